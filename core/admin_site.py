"""The project's admin site: Django's, with ``FilterLookupsOnlyMixin`` given to every
ModelAdmin registered on it, the project's and third-party apps' (auth, django-celery-beat)
alike, so no changelist can be turned into an oracle on a secret or a password hash."""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.utils import quote
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.module_loading import import_string

from .admin import FilterLookupsOnlyMixin
from .search import staff_search, term_refusal


class ProjectAdminSite(admin.AdminSite):
    """``admin.site``; see the module docstring. Every page also shows the lines the callables
    named in ``ADMIN_BANNERS`` return (notifications: its disabled endpoints) and a warning per
    periodic task of ``PERIODIC_TASKS`` disabled or missing (``core.beat``), as errors at
    the top (core/templates/admin/base_site.html), and a Find box (``find_view``)."""

    def get_urls(self):
        find = path("find/", self.admin_view(self.find_view), name="find")
        return [find, *super().get_urls()]

    def find_view(self, request):
        """``GET /admin/find/?q=<identifier>``: every row any app finds for it
        (``core.search``) that this staff user may view, each linking to its change page;
        a term that cannot be an identifier (``term_refusal``) is a 400 that says why."""
        term = request.GET.get("q", "").strip()
        refusal = term_refusal(term)
        matches = [] if refusal else staff_search(term=term, visible=self._viewable(request))
        context = {
            **self.each_context(request),
            "title": f"Find “{term}”" if term else "Find",
            "find_term": term,
            "refusal": refusal,
            "results": [self._result_row(match) for match in matches],
        }
        status = 400 if refusal else 200
        return TemplateResponse(request, "admin/find.html", context, status=status)

    def _viewable(self, request):
        def viewable(obj) -> bool:
            model_admin = self._registry.get(type(obj))
            return model_admin is not None and model_admin.has_view_permission(request, obj)

        return viewable

    def _result_row(self, match) -> dict:
        opts = match.obj._meta
        url_name = f"{self.name}:{opts.app_label}_{opts.model_name}_change"
        return {
            "kind": opts.verbose_name.capitalize(),
            "model": opts.model_name,
            "row": str(match.obj),
            "url": reverse(url_name, args=[quote(match.obj.pk)]),
            "via": match.via,
            "term": match.term,
        }

    def each_context(self, request):
        context = super().each_context(request)
        # Staff only: the log-in page is this site's too, and shows them to anyone.
        context["banners"] = self._banners() if self.has_permission(request) else []
        return context

    def _banners(self) -> list[str]:
        # Imported here: this module is loaded with INSTALLED_APPS, before any model.
        from .beat import periodic_tasks_stopped_warnings

        lines = [line for path in settings.ADMIN_BANNERS for line in import_string(path)()]
        return lines + periodic_tasks_stopped_warnings()

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, FilterLookupsOnlyMixin):
            admin_class = type(
                admin_class.__name__,
                (FilterLookupsOnlyMixin, admin_class),
                {"__module__": admin_class.__module__},
            )
        super().register(model_or_iterable, admin_class, **options)


class ProjectAdminConfig(AdminConfig):
    """``django.contrib.admin`` with ``ProjectAdminSite`` as ``admin.site`` (INSTALLED_APPS),
    and django-celery-beat's periodic task admin replaced by core's (``core.admin_beat``)."""

    default_site = "core.admin_site.ProjectAdminSite"

    def ready(self):
        super().ready()  # autodiscover: every app's admin module, django-celery-beat's too
        from .admin_beat import periodic_task_admin_replace

        periodic_task_admin_replace(admin.site)
