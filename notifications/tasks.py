"""Celery wrappers, and the worker's lifecycle hooks. Names are stable: messages already in
the broker use them.

The delivery tasks only wake this process's dispatcher (``notifications.dispatcher``), which
claims, sends and records on threads of its own: a task takes microseconds whatever the
receivers do, and a message lost or delivered twice changes nothing (the row is the truth).
"""

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from django.utils import timezone

from . import alerts, services
from .conf import notify_settings
from .dispatcher import dispatcher, dispatcher_stop


@shared_task(name="notifications.deliver")
def deliver(notification_id: str):
    """A notification was created or resent: its attempt first, as soon as it may go."""
    dispatcher().wake(hint=notification_id)


@shared_task(name="notifications.dispatch")
def dispatch():
    """Notifications are due (the sweeper, or staff re-enabled an endpoint): look now."""
    dispatcher().wake()


@shared_task(name="notifications.announce_endpoint_disabled")
def announce_endpoint_disabled(endpoint_id: int):
    """An endpoint was disabled: tell staff and the sender (notifications.alerts)."""
    alerts.endpoint_disabled_announce(endpoint_id=endpoint_id)


@shared_task(name="notifications.sweep")
def sweep():
    """Beat: release orphaned claims and wake workers while notifications are due."""
    return services.notifications_sweep()


@shared_task(name="notifications.prune")
def prune():
    """Beat: delete delivered notifications past ``NOTIFY_RETENTION`` (bounded batches)."""
    return services.notifications_prune(
        now=timezone.now(),
        batch_size=notify_settings.PRUNE_BATCH,
        budget_seconds=notify_settings.PRUNE_BUDGET,
    )


@worker_process_shutdown.connect
@worker_shutdown.connect
def finish_in_flight(**kwargs) -> None:
    """A warm shutdown (SIGTERM, a deploy) records what is in flight instead of leaving it
    to the sweeper: no new claims, the requests finish (within the attempt deadline)."""
    dispatcher_stop()
