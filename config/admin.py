"""Admin building blocks shared by the apps."""

from django.contrib.auth import get_permission_codename


class ReadOnlyAdminMixin:
    """No add, change or delete from the admin: rows change only through services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_operate_permission(self, request):
        """Actions that move rows on need the model's change permission, although no
        field can be edited here: view-only staff may look but not act."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")
