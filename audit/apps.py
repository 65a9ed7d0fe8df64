from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Only the ``audit`` management command and ``audit.checks``: no models, no URLs."""

    name = "audit"
    verbose_name = "Books audit (read-only)"
