"""The Celery application; its settings live in Django settings under the ``CELERY_`` prefix."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(task=None, **kwargs) -> None:
    """What Django does around each request, around each task: drop a connection that is
    past ``CONN_MAX_AGE``, errored or (next use) fails its health check, keep the others
    (settings ``CELERY_DB_REUSE_MAX``). Not for a task run eagerly, inside its caller's
    transaction (as Celery's own fixup)."""
    from django.db import close_old_connections

    if not getattr(getattr(task, "request", None), "is_eager", False):
        close_old_connections()
