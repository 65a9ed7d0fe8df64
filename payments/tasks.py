"""Celery wrappers for payments' periodic work."""

from celery import shared_task

from . import services


@shared_task(name="payments.expire_stale_orders")
def expire_stale_orders():
    """Beat: pending orders past ``PAYMENTS_ORDER_TTL`` become failed (and notify)."""
    return services.recharge_orders_expire_stale()
