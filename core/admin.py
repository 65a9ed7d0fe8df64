"""Admin building blocks shared by the apps, and the record of what staff did there."""

import logging

from django.contrib.admin.filters import SimpleListFilter
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth import get_permission_codename

logger = logging.getLogger("staff")

# The query parameters Django's own list filters write for a field path (django/contrib/admin/
# filters.py: AllValues "path", Choices/Boolean "path__exact", Date "path__gte"/"path__lt",
# Empty "path__isempty", every one "path__isnull"), and those of a date hierarchy.
_FIELD_FILTER_SUFFIXES = ("", "__exact", "__isnull", "__isempty", "__gte", "__lt")
_DATE_HIERARCHY_SUFFIXES = ("__year", "__month", "__day")


class FilterLookupsOnlyMixin:
    """A changelist accepts only the URL lookups its own filters write.

    Django's default ``lookup_allowed`` accepts any lookup on any of the model's own fields,
    so ``?webhook_secret__gte=whsec_M`` answered "1 merchant" or "0 merchants" to staff who
    may only view merchants: a secret recovered by binary search in ~300 requests. Here a
    query parameter is allowed only when it is one a ``list_filter`` entry or the
    ``date_hierarchy`` produces; anything else is Django's 400 (``DisallowedModelAdminLookup``)
    and no query runs. ``core.admin_site`` gives every registered ModelAdmin this mixin,
    third-party ones included (auth's ``password`` hash was exposed the same way).
    """

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in self.filter_parameters(request)

    def filter_parameters(self, request) -> set[str]:
        """Every query parameter this changelist's filters may write."""
        list_filter = self.get_list_filter(request) if request is not None else self.list_filter
        allowed = set()
        for item in list_filter:
            if isinstance(item, type) and issubclass(item, SimpleListFilter):
                allowed.add(item.parameter_name)
            elif not isinstance(item, type):  # a field path, or (path, FieldListFilter class)
                allowed |= _field_filter_parameters(
                    self.model, item[0] if isinstance(item, (list, tuple)) else item
                )
        if self.date_hierarchy:
            allowed.update(self.date_hierarchy + suffix for suffix in _DATE_HIERARCHY_SUFFIXES)
        return allowed


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


def _field_filter_parameters(model, path: str) -> set[str]:
    """The parameters a field list filter on ``path`` writes (a relation's by its target)."""
    parameters = {path + suffix for suffix in _FIELD_FILTER_SUFFIXES}
    field = get_fields_from_path(model, path)[-1]
    if field.is_relation:
        parameters.add(f"{path}__{field.target_field.name}__exact")
    return parameters


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
