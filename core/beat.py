"""Periodic tasks are declared in code (settings ``PERIODIC_TASKS``) and synced into
django-celery-beat's tables, where staff can edit them (django-celery-beat ``README.rst``)."""

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

# What stops while a periodic task of the pipeline is not running, by task; anything else
# in PERIODIC_TASKS is described by its name alone.
STOPS = {
    "notifications.sweep": "retries stop: no failed or orphaned notification is sent again",
    "payments.expire_stale_orders": "unpaid orders are never expired",
    "accounts.reconcile_pending": "recharges stuck pending are not reconciled",
}


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


def periodic_task_stop_warning(*, name: str, task: str, state: str) -> str:
    """The warning for the ``PERIODIC_TASKS`` entry ``name`` being ``state`` (``"disabled"``,
    ``"deleted"`` or ``"missing"``): what stops, and how to bring it back."""
    stops = STOPS.get(task, "its work stops")
    again = "re-enabled" if state == "disabled" else "recreated (manage.py migrate does it)"
    return f"Periodic task “{name}” is {state}: {stops} until it is {again}."


def periodic_tasks_stopped_warnings() -> list[str]:
    """One warning per ``PERIODIC_TASKS`` entry disabled or missing in beat's table (an
    ``ADMIN_BANNERS``-style callable: core's admin site shows them on every page)."""
    entries = {entry["name"]: entry for entry in settings.PERIODIC_TASKS}
    enabled = dict(PeriodicTask.objects.filter(name__in=entries).values_list("name", "enabled"))
    return [
        periodic_task_stop_warning(
            name=name,
            task=entry["task"],
            state="missing" if name not in enabled else "disabled",
        )
        for name, entry in entries.items()
        if not enabled.get(name)
    ]
