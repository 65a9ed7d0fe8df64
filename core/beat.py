"""Periodic tasks are declared in code (settings ``PERIODIC_TASKS``) and synced into
django-celery-beat's tables, where staff can edit them (django-celery-beat ``README.rst``)."""

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask


def periodic_task_ensure(*, name: str, task: str, every: float, queue: str) -> PeriodicTask:
    """Create the beat entry ``name`` running ``task`` every ``every`` seconds if it is missing.

    An existing entry is left as staff last edited it (interval, enabled), so a deploy does
    not wipe admin changes; only the task path and queue are kept in step with the code.
    Intervals below one second round up to one: beat's resolution.
    """
    schedule, _ = IntervalSchedule.objects.get_or_create(
        every=max(1, round(every)), period=IntervalSchedule.SECONDS
    )
    periodic_task, created = PeriodicTask.objects.get_or_create(
        name=name, defaults={"task": task, "interval": schedule, "queue": queue}
    )
    if not created and (periodic_task.task, periodic_task.queue) != (task, queue):
        periodic_task.task, periodic_task.queue = task, queue
        periodic_task.save(update_fields=["task", "queue"])
    return periodic_task


def periodic_tasks_sync(sender=None, **kwargs) -> None:
    """``post_migrate`` receiver: ensure every entry of ``PERIODIC_TASKS`` exists (each a dict
    of ``periodic_task_ensure``'s arguments)."""
    for entry in settings.PERIODIC_TASKS:
        periodic_task_ensure(**entry)
