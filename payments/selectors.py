"""Reads of merchants and orders."""

import hashlib
import hmac
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, QuerySet

from notifications.selectors import (
    notification_latest_state,
    notification_subjects_exhausted,
    notification_subjects_undelivered,
)

from .models import Merchant, RechargeOrder


def api_key_hash(api_key: str) -> str:
    """SHA-256 hex of an API key: keys are 256-bit random, so a fast hash suffices."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def merchant_for_api_key(*, api_key: str) -> Merchant | None:
    """The active merchant owning ``api_key``, or None. The hash comparison is constant-time."""
    merchant = Merchant.objects.filter(api_key_prefix=api_key[:16], is_active=True).first()
    if merchant and hmac.compare_digest(merchant.api_key_hash, api_key_hash(api_key)):
        return merchant
    return None


def merchant_webhook_secrets(sender_key: str) -> list[str]:
    """The ``whsec_`` secrets to sign a merchant's notifications with (``NOTIFY_SECRET_RESOLVER``).

    ``sender_key`` is the merchant's ``app_id``. Raises ``Merchant.DoesNotExist``.
    """
    return [Merchant.objects.values_list("webhook_secret", flat=True).get(app_id=sender_key)]


def recharge_orders_for_merchant(*, merchant: Merchant) -> QuerySet:
    """Only this merchant's orders: every merchant-facing read goes through here."""
    return RechargeOrder.objects.filter(merchant=merchant)


def recharge_order_stale_tx_nos(*, created_before, limit: int) -> list[str]:
    """tx_nos of orders still pending that were created before ``created_before``, oldest
    first; uses the (status, created_at) index."""
    return list(
        RechargeOrder.objects.filter(
            status=RechargeOrder.Status.PENDING, created_at__lt=created_before
        )
        .order_by("created_at")
        .values_list("tx_no", flat=True)[:limit]
    )


def recharge_orders_with_notification_state(*, orders: QuerySet) -> QuerySet:
    """``orders`` annotated with ``notification_state``: the state of each order's newest
    notification, or None while it has none (still pending)."""
    return orders.annotate(notification_state=notification_latest_state(subject=OuterRef("tx_no")))


def recharge_orders_pending_too_long(*, orders: QuerySet, now: datetime) -> QuerySet:
    """Those of ``orders`` still pending ``STUCK_AFTER`` seconds after they were created."""
    created_before = now - timedelta(seconds=settings.STUCK_AFTER)
    return orders.filter(status=RechargeOrder.Status.PENDING, created_at__lt=created_before)


def recharge_orders_unacknowledged(*, orders: QuerySet) -> QuerySet:
    """Those of ``orders`` that are final but whose notification the merchant has not
    acknowledged yet (pending, being sent, or exhausted)."""
    return orders.exclude(status=RechargeOrder.Status.PENDING).filter(
        tx_no__in=notification_subjects_undelivered()
    )


def recharge_orders_exhausted(*, orders: QuerySet) -> QuerySet:
    """Those of ``orders`` with a notification whose retries ran out: staff must act."""
    return orders.filter(tx_no__in=notification_subjects_exhausted())
