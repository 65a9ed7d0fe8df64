"""Celery wrappers: ids in, service calls out. Names are stable; messages in Redis use them."""

from celery import shared_task

from . import services


@shared_task(
    bind=True,
    name="notifications.deliver",
    max_retries=None,
    # Well above connect + read timeout, well below NOTIFY_CLAIM_TIMEOUT and the broker's
    # visibility timeout: a hung attempt is killed before its claim is presumed dead.
    time_limit=60,
    soft_time_limit=50,
)
def deliver(self, notification_id: str):
    """Make the notification's next attempt; a short retry delay becomes a countdown."""
    outcome = services.notification_deliver(notification_id=notification_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(name="notifications.sweep")
def sweep():
    """Beat: release orphaned claims and re-enqueue due notifications."""
    return services.notifications_sweep()
