"""Writes of merchants and recharge orders.

A final status and its notification are written in one transaction (the outbox); the
notification's delivery task is sent only after that commit (``notification_create``).
"""

import secrets
from base64 import b64encode
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.selectors import notifications_for_subject
from notifications.services import notification_create, notification_resend

from .models import Merchant, RechargeOrder
from .selectors import api_key_hash, recharge_order_stale_tx_nos

Status = RechargeOrder.Status
EVENT_TYPES = {Status.SUCCEEDED: "recharge.succeeded", Status.FAILED: "recharge.failed"}


class OrderConflict(Exception):
    """The ``out_trade_no`` already names an order with different parameters."""


@dataclass(frozen=True)
class MerchantCredentials:
    """What onboarding shows once: the API key and webhook secret are not stored in clear
    (the key) or not shown again (the secret)."""

    merchant: Merchant
    api_key: str
    webhook_secret: str


def merchant_create(
    *, name: str, api_key: str | None = None, webhook_secret: str | None = None
) -> MerchantCredentials:
    """Onboard a merchant with fresh credentials (or given ones, for the development seed)."""
    api_key = api_key or f"sk_{secrets.token_urlsafe(32)}"
    webhook_secret = webhook_secret or f"whsec_{b64encode(secrets.token_bytes(32)).decode()}"
    merchant = Merchant.objects.create(
        name=name,
        app_id=f"app_{secrets.token_hex(8)}",
        api_key_prefix=api_key[:16],
        api_key_hash=api_key_hash(api_key),
        webhook_secret=webhook_secret,
    )
    return MerchantCredentials(merchant, api_key, webhook_secret)


def recharge_order_create(
    *,
    merchant: Merchant,
    out_trade_no: str,
    account_no: str,
    amount: int,
    currency: str,
    notify_url: str,
    return_url: str,
) -> tuple[RechargeOrder, bool]:
    """Create an order, or return the existing one for the same ``out_trade_no``.

    Returns ``(order, created)``. The database's unique constraint decides a race between
    two identical requests. Raises ``OrderConflict`` when the existing order differs in
    account, amount, currency or URLs (as Alipay refuses a reused out_trade_no).
    """
    fields = {
        "account_no": account_no,
        "amount": amount,
        "currency": currency,
        "notify_url": notify_url,
        "return_url": return_url,
    }
    try:
        with transaction.atomic():
            order = RechargeOrder.objects.create(
                merchant=merchant, out_trade_no=out_trade_no, tx_no=_new_tx_no(), **fields
            )
        return order, True
    except IntegrityError:
        order = RechargeOrder.objects.get(merchant=merchant, out_trade_no=out_trade_no)
    if any(getattr(order, name) != value for name, value in fields.items()):
        raise OrderConflict(f"out_trade_no {out_trade_no} was used for a different order")
    return order, False


def recharge_order_pay(*, tx_no: str) -> RechargeOrder:
    """The sandbox channel reports success: 0→100 and a ``recharge.succeeded`` notification."""
    return _finish(tx_no=tx_no, status=Status.SUCCEEDED, reason="")[0]


def recharge_order_decline(*, tx_no: str) -> RechargeOrder:
    """The payer declined: 0→200 and a ``recharge.failed`` notification."""
    return _finish(tx_no=tx_no, status=Status.FAILED, reason="declined")[0]


def recharge_order_expire(*, tx_no: str) -> RechargeOrder:
    """Time-to-live passed (or staff expired it): 0→200 and a ``recharge.failed`` notification."""
    return _finish(tx_no=tx_no, status=Status.FAILED, reason="expired")[0]


def recharge_order_resend_notifications(*, tx_no: str) -> int:
    """Staff's "resend now": schedule an immediate attempt of every notification about the
    order. Returns how many were scheduled: 0 while the order is pending (nothing to send)
    or when each has an attempt in flight."""
    notifications = notifications_for_subject(subject=tx_no).prefetch_related(None)
    return sum(notification_resend(notification_id=n.pk) for n in notifications)


def recharge_orders_expire_stale(*, limit: int = 500) -> int:
    """Expire orders pending longer than ``PAYMENTS_ORDER_TTL`` seconds; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.PAYMENTS_ORDER_TTL)
    stale = recharge_order_stale_tx_nos(created_before=cutoff, limit=limit)
    return sum(_finish(tx_no=tx_no, status=Status.FAILED, reason="expired")[1] for tx_no in stale)


def notification_data(order: RechargeOrder) -> dict:
    """The ``data`` object of a recharge notification (design.md, "HTTP contract")."""
    return {
        "tx_no": order.tx_no,
        "out_trade_no": order.out_trade_no,
        "account_no": order.account_no,
        "amount": order.amount,
        "currency": order.currency,
        "status": order.status,
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
    }


def _finish(*, tx_no: str, status: Status, reason: str) -> tuple[RechargeOrder, bool]:
    """Move a pending order to ``status`` and write its notification, atomically.

    Returns ``(order, moved)``. Idempotent: an order that is already final is returned
    unchanged (``moved`` False) and notifies nothing.
    Raises ``RechargeOrder.DoesNotExist`` for an unknown tx_no.
    """
    now = timezone.now()
    with transaction.atomic():
        moved = RechargeOrder.objects.filter(tx_no=tx_no, status=Status.PENDING).update(
            status=status,
            finished_at=now,
            paid_at=now if status == Status.SUCCEEDED else None,
            failure_reason=reason,
        )
        order = RechargeOrder.objects.select_related("merchant").get(tx_no=tx_no)
        if moved:
            notification_create(
                sender_key=order.merchant.app_id,
                subject=order.tx_no,
                event_type=EVENT_TYPES[status],
                target_url=order.notify_url,
                data=notification_data(order),
            )
    return order, bool(moved)


def _new_tx_no() -> str:
    """Date prefix for humans, 80 random bits so it cannot be guessed or enumerated."""
    return f"{timezone.now():%Y%m%d}{secrets.token_hex(10)}"
