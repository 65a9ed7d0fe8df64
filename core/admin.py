"""Admin building blocks shared by the apps, and the record of what staff did there."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin.filters import SimpleListFilter
from django.contrib.admin.utils import get_fields_from_path, quote, unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

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


def _field_filter_parameters(model, field_path: str) -> set[str]:
    """The parameters a field list filter on ``field_path`` writes (a relation's by its
    target)."""
    parameters = {field_path + suffix for suffix in _FIELD_FILTER_SUFFIXES}
    field = get_fields_from_path(model, field_path)[-1]
    if field.is_relation:
        parameters.add(f"{field_path}__{field.target_field.name}__exact")
    return parameters


@dataclass(frozen=True)
class PageAction:
    """A button on a change page: ``label``, shown while ``applies(obj)``; pressing it POSTs
    to the ModelAdmin's ``page_<name>(request, obj)``, which acts, logs and leaves a
    message."""

    name: str
    label: str
    applies: Callable[[object], bool] = lambda obj: True


class PageActionsMixin:
    """Actions as buttons on the change page being read, not only as bulk actions on a list.

    Each of ``page_actions`` is a form POSTing (with CSRF) to
    ``<object>/act/<name>/``, which needs ``has_operate_permission`` (view-only staff see
    no button, and a POST of theirs is a 403), runs ``page_<name>(request, obj)`` and
    redirects back to the page. Use with ``ReadOnlyAdminMixin``.
    """

    page_actions: tuple[PageAction, ...] = ()
    change_form_template = "admin/page_actions_change_form.html"

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_act"
        view = self.admin_site.admin_view(require_POST(self.page_action_view))
        return [path("<path:object_id>/act/<str:action>/", view, name=name), *super().get_urls()]

    def page_action_view(self, request, object_id, action):
        """POST only: run one page action on one object; 404 for an unknown action or object,
        403 without the permission, and back to the page with a message when it no longer
        applies (the order was paid meanwhile, say)."""
        chosen = next((a for a in self.page_actions if a.name == action), None)
        obj = self.get_object(request, unquote(object_id))
        if chosen is None or obj is None:
            raise Http404(f"No action {action!r} on this object.")
        if not self.has_operate_permission(request):
            raise PermissionDenied
        if chosen.applies(obj):
            getattr(self, f"page_{chosen.name}")(request, obj)
        else:
            message = f"{chosen.label}: not done, it does not apply to this row any more."
            self.message_user(request, message, messages.WARNING)
        return HttpResponseRedirect(self._change_page(obj))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_operate_permission(request):
            name = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_act"
            context["page_actions"] = [
                {"label": a.label, "url": reverse(name, args=[quote(obj.pk), a.name])}
                for a in self.page_actions
                if a.applies(obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _change_page(self, obj) -> str:
        name = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change"
        return reverse(name, args=[quote(obj.pk)])


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


def admin_search_link(url_name: str, *, q: str, text: str) -> str:
    """A link to the changelist ``url_name`` (``"admin:app_model_changelist"``) searched for
    ``q``: how one app's page points at another app's rows without importing its models."""
    return format_html('<a href="{}?{}">{}</a>', reverse(url_name), urlencode({"q": q}), text)


def admin_find_link(*, q: str, text: str) -> str:
    """A link to staff's Find page (``core.search``) for ``q``: every app's rows about it."""
    return format_html('<a href="{}?{}">{}</a>', reverse("admin:find"), urlencode({"q": q}), text)


def links_line(links: list[str]) -> str:
    """Links (already escaped HTML) joined by " · "; a dash when there is none."""
    return format_html_join(mark_safe(" · "), "{}", ((link,) for link in links)) or "—"


def when(moment) -> str:
    """A moment as the admin shows every time: ``DATETIME_FORMAT`` (core/formats/: to the
    second, with its zone, ``2026-11-27 14:03:22 UTC``) in the current time zone; a dash
    for None."""
    if moment is None:
        return "—"
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
