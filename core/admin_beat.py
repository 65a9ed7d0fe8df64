"""django-celery-beat's periodic task admin, telling staff what its actions really do: "run"
only queues a task (its own message says "successfully run"), and disabling or deleting one
of the pipeline's periodic tasks stops its work (the sweeper: every retry) until it is back.

Registered in place of the package's by ``core.admin_site.ProjectAdminConfig.ready()``.
"""

import re

from django.conf import settings
from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from .beat import periodic_task_stop_warning

# django-celery-beat's message after its run action, which only called apply_async.
_RUN_MESSAGE = re.compile(r"^(\d+) tasks? (?:was|were) successfully run$")


class PipelinePeriodicTaskAdmin(PeriodicTaskAdmin):
    """``PeriodicTaskAdmin`` with truthful messages; see the module docstring. While a
    pipeline task is disabled or missing, every admin page says so (``core.beat.
    periodic_tasks_stopped_warnings``); its delete confirmation says what stops."""

    @admin.action(description="Queue selected tasks to run now")
    def run_tasks(self, request, queryset):
        return super().run_tasks(request, queryset)

    def message_user(self, request, message, *args, **kwargs):
        ran = _RUN_MESSAGE.match(str(message))
        if ran:
            message = (
                f"Queued {ran[1]} task(s): a worker runs each when it takes it from the queue "
                "(the worker's log shows when); none has run yet."
            )
        super().message_user(request, message, *args, **kwargs)

    def delete_view(self, request, object_id, extra_context=None):
        task = self.get_object(request, object_id)
        warning = _stop_warning(task, "deleted") if task is not None else None
        extra_context = {**(extra_context or {}), "stop_warning": warning}
        return super().delete_view(request, object_id, extra_context)


def _stop_warning(task: PeriodicTask, state: str) -> str | None:
    """The warning for ``task`` when it is one of ``PERIODIC_TASKS``, else None."""
    if not any(entry["name"] == task.name for entry in settings.PERIODIC_TASKS):
        return None
    return periodic_task_stop_warning(name=task.name, task=task.task, state=state)


def periodic_task_admin_replace(site) -> None:
    """Register ``PipelinePeriodicTaskAdmin`` on ``site`` in place of the package's."""
    if site.is_registered(PeriodicTask):
        site.unregister(PeriodicTask)
    site.register(PeriodicTask, PipelinePeriodicTaskAdmin)
