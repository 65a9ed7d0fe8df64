"""The project's admin site: Django's, with ``FilterLookupsOnlyMixin`` given to every
ModelAdmin registered on it, the project's and third-party apps' (auth, django-celery-beat)
alike, so no changelist can be turned into an oracle on a secret or a password hash."""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.module_loading import import_string

from .admin import FilterLookupsOnlyMixin


class ProjectAdminSite(admin.AdminSite):
    """``admin.site``; see the module docstring. Every page also shows the lines the callables
    named in ``ADMIN_BANNERS`` return (notifications: its disabled endpoints), as errors at
    the top (core/templates/admin/base_site.html)."""

    def each_context(self, request):
        context = super().each_context(request)
        context["banners"] = [
            line for path in settings.ADMIN_BANNERS for line in import_string(path)()
        ]
        return context

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
    """``django.contrib.admin`` with ``ProjectAdminSite`` as ``admin.site`` (INSTALLED_APPS)."""

    default_site = "core.admin_site.ProjectAdminSite"
