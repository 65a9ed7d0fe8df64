"""Admin building blocks shared by the apps, and the record of what staff did there."""

import logging

from django.contrib.auth import get_permission_codename

logger = logging.getLogger("staff")


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


def staff_action_log(*, modeladmin, request, obj, message: str) -> None:
    """Record that ``request.user`` did ``message`` to ``obj`` from ``modeladmin``: in Django's
    admin log (each object's History, the admin index) and on the ``staff`` logger."""
    modeladmin.log_change(request, obj, message)
    logger.info(
        "staff action by %s on %s %s: %s",
        request.user.get_username(),
        obj._meta.label,
        obj.pk,
        message,
    )
