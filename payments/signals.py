"""Receivers wired up in ``PaymentsConfig.ready``."""

from django.conf import settings

from config.beat import periodic_task_ensure


def sync_periodic_tasks(sender, **kwargs):
    """Make sure the order-expiry beat entry exists after ``migrate``."""
    periodic_task_ensure(
        name="payments: expire stale pending orders",
        task="payments.expire_stale_orders",
        every=settings.PAYMENTS_EXPIRE_INTERVAL,
        queue="periodic",
    )
