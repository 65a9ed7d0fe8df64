from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from .beat import periodic_tasks_sync

        # Once per migrate, after django-celery-beat's own app (this one has no models, so
        # Django sends it no post_migrate of its own).
        post_migrate.connect(periodic_tasks_sync, sender=apps.get_app_config("django_celery_beat"))
