"""The project's admin site: Django's, with ``FilterLookupsOnlyMixin`` given to every
ModelAdmin registered on it, the project's and third-party apps' (auth, django-celery-beat)
alike, so no changelist can be turned into an oracle on a secret or a password hash."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

from .admin import FilterLookupsOnlyMixin


class ProjectAdminSite(admin.AdminSite):
    """``admin.site``; see the module docstring."""

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
