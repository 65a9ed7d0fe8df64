"""Writes of merchants and recharge orders.

A final status and its notification are written in one transaction (the outbox); the
notification's delivery task is sent only after that commit (``notification_create``).
"""

import ipaddress
import logging
import re
import secrets
from base64 import b64encode
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from notifications.queues import NAME as QUEUE_NAME
from notifications.selectors import notifications_for_subject
from notifications.services import notification_create, notification_resend

from .contract import EVENT_TYPES, RechargeStatus, recharge_result
from .models import Merchant, RechargeOrder
from .selectors import (
    api_key_hash,
    merchant_url_refusal,
    recharge_order_expiry_cutoff,
    recharge_order_stale_tx_nos,
)

logger = logging.getLogger(__name__)
Status = RechargeStatus


class OrderConflict(Exception):
    """The ``out_trade_no`` already names an order with different parameters."""


class PaymentRefused(Exception):
    """The order cannot be paid any more: its time-to-live has passed or its merchant was
    deactivated. The message is for the payer."""


@dataclass(frozen=True)
class MerchantCredentials:
    """What onboarding shows once: the API key and webhook secret are not stored in clear
    (the key) or not shown again (the secret)."""

    merchant: Merchant
    api_key: str
    webhook_secret: str


def merchant_create(
    *,
    name: str,
    api_key: str | None = None,
    webhook_secret: str | None = None,
    allowed_hosts: list[str] | None = None,
    ops_url: str = "",
    notify_queues: list[str] | None = None,
) -> MerchantCredentials:
    """Onboard a merchant with fresh credentials (or given ones, for the development seed).

    ``allowed_hosts`` are the hosts its notify_url and return_url may name; by default
    ``PAYMENTS_DEFAULT_ALLOWED_HOSTS`` (development: the local demo's; production: none, so
    they must be given). ``ops_url`` (optional) receives operational notifications such as
    ``endpoint.disabled``, under notify_url's rules. ``notify_queues`` are the queue names
    its notify_url may name as ``queue://<name>`` (scheme 1; default none). Raises
    ``ValueError`` for an empty or malformed host list, a refused ops URL or a malformed
    queue name.
    """
    queue_names = notify_queues_normalize(notify_queues or [])
    if allowed_hosts is None:
        allowed_hosts = settings.PAYMENTS_DEFAULT_ALLOWED_HOSTS
    hosts = allowed_hosts_normalize(allowed_hosts)
    if ops_url:
        refusal = merchant_url_refusal(
            merchant=Merchant(allowed_hosts=hosts), url=ops_url, notify=True
        )
        if refusal:
            raise ValueError(f"ops URL: {refusal}")
    api_key = api_key or _new_api_key()
    webhook_secret = webhook_secret or _new_webhook_secret()
    merchant = Merchant.objects.create(
        name=name,
        app_id=f"app_{secrets.token_hex(8)}",
        api_key_prefix=api_key[:16],
        api_key_hash=api_key_hash(api_key),
        webhook_secret=webhook_secret,
        allowed_hosts=hosts,
        ops_url=ops_url,
        notify_queues=queue_names,
    )
    return MerchantCredentials(merchant, api_key, webhook_secret)


def notify_queues_normalize(names: list[str]) -> list[str]:
    """Queue names as stored: stripped, duplicates dropped, in order. Raises ``ValueError``
    for one that is not 1-40 of a-z, 0-9 or -."""
    normalized = list(dict.fromkeys(name.strip() for name in names))
    for name in normalized:
        if not QUEUE_NAME.match(name):
            raise ValueError(f"queue name {name!r}: use 1-40 lower-case letters, digits or -")
    return normalized


_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_LABELS = re.compile(rf"^\.?(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def allowed_hosts_normalize(hosts: list[str]) -> list[str]:
    """Lower-case, de-duplicated host patterns: a host name, an IP address (IPv6 in
    brackets) or ``.example.com`` for a domain and its subdomains. No wildcard ``*``: a
    merchant's hosts are always named. Raises ``ValueError``."""
    normalized = []
    for raw in hosts:
        host = raw.strip().lower().rstrip(".")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if not _HOST_LABELS.match(host):
                raise ValueError(f"not a host name: {raw!r}") from None
        else:
            host = f"[{ip}]" if ip.version == 6 else str(ip)
        if host not in normalized:
            normalized.append(host)
    if not normalized:
        raise ValueError("at least one allowed host is required (notify_url and return_url)")
    return normalized


def merchant_allowed_hosts_set(*, merchant: Merchant, hosts: list[str]) -> Merchant:
    """Replace the hosts the merchant's URLs may name. Raises ``ValueError``."""
    merchant.allowed_hosts = allowed_hosts_normalize(hosts)
    merchant.save(update_fields=["allowed_hosts"])
    return merchant


def merchant_webhook_secret_roll(*, merchant: Merchant, overlap: timedelta | None = None) -> str:
    """Give the merchant a new webhook secret and return it (shown once).

    For ``overlap`` (default ``PAYMENTS_WEBHOOK_SECRET_OVERLAP`` seconds, 24 h) every
    notification is signed with both the new and the old secret, so the receiver can
    switch whenever it likes; a zero overlap drops the old secret at once. Rolling again
    during an overlap keeps only the secret being replaced as "previous".
    """
    if overlap is None:
        overlap = timedelta(seconds=settings.PAYMENTS_WEBHOOK_SECRET_OVERLAP)
    new_secret = _new_webhook_secret()
    with transaction.atomic():
        locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
        keep_previous = overlap > timedelta(0)
        locked.previous_webhook_secret = locked.webhook_secret if keep_previous else ""
        locked.previous_secret_expires_at = timezone.now() + overlap if keep_previous else None
        locked.webhook_secret = new_secret
        locked.save(
            update_fields=[
                "webhook_secret",
                "previous_webhook_secret",
                "previous_secret_expires_at",
            ]
        )
    merchant.refresh_from_db()
    logger.info("webhook secret of %s rolled (overlap %s)", merchant.app_id, overlap)
    return new_secret


def merchant_api_key_revoke(*, merchant: Merchant, issue_new: bool = True) -> str | None:
    """Revoke the merchant's API key at once; return a newly issued key (shown once), or
    None with ``issue_new=False`` (the merchant then has no working key)."""
    if issue_new:
        new_key = _new_api_key()
        prefix, digest = new_key[:16], api_key_hash(new_key)
    else:
        # A prefix no key can have ("rv_" is never a key's start) and a hash no key matches.
        new_key, prefix, digest = None, f"rv_{secrets.token_hex(6)}", ""
    Merchant.objects.filter(pk=merchant.pk).update(api_key_prefix=prefix, api_key_hash=digest)
    merchant.refresh_from_db()
    logger.info("API key of %s revoked%s", merchant.app_id, "; new key issued" * issue_new)
    return new_key


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
    """The sandbox channel reports success: 0→100 and a ``recharge.succeeded`` notification.

    Only while the order is payable, decided in the same conditional update: created less
    than ``PAYMENTS_ORDER_TTL`` seconds ago (whether or not the expiry tick has run) and its
    merchant active. Raises ``PaymentRefused`` otherwise: a stale order is expired on the
    spot (``recharge.failed``, as the tick would have); a deactivated merchant's order stays
    pending until it expires. An order already final is returned unchanged.
    """
    cutoff = recharge_order_expiry_cutoff()
    # merchant__is_active would join, and Django then writes the UPDATE as "id IN (SELECT …
    # JOIN …)", which PostgreSQL does not re-check against a row a concurrent decline or
    # expiry just committed: the order was paid after all. A subquery on the merchant table
    # alone keeps the UPDATE's own WHERE, re-checked under the row lock.
    active = Merchant.objects.filter(is_active=True).values("pk")
    payable = Q(created_at__gte=cutoff, merchant__in=active)
    order, moved = _finish(tx_no=tx_no, status=Status.SUCCEEDED, reason="", only_if=payable)
    if moved or order.status != Status.PENDING:
        return order
    if order.created_at < cutoff:
        recharge_order_expire(tx_no=tx_no)
        raise PaymentRefused("This order has expired; it was not paid.")
    raise PaymentRefused("This merchant no longer accepts payments; the order was not paid.")


def recharge_order_decline(*, tx_no: str) -> RechargeOrder:
    """The payer declined: 0→200 and a ``recharge.failed`` notification."""
    return _finish(tx_no=tx_no, status=Status.FAILED, reason="declined")[0]


def recharge_order_cancel(*, tx_no: str) -> RechargeOrder:
    """The payer gave up at the cashier: 0→200 (``failure_reason`` "cancelled") and a
    ``recharge.failed`` notification, as for a decline. An order already final is returned
    unchanged."""
    return _finish(tx_no=tx_no, status=Status.FAILED, reason="cancelled")[0]


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
    cutoff = recharge_order_expiry_cutoff()
    stale = recharge_order_stale_tx_nos(created_before=cutoff, limit=limit)
    return sum(_finish(tx_no=tx_no, status=Status.FAILED, reason="expired")[1] for tx_no in stale)


def _finish(
    *, tx_no: str, status: Status, reason: str, only_if: Q | None = None
) -> tuple[RechargeOrder, bool]:
    """Move a pending order to ``status`` and write its notification, atomically.

    Returns ``(order, moved)``. Idempotent: an order that is already final, or that does not
    match ``only_if``, is returned unchanged (``moved`` False) and notifies nothing.
    Raises ``RechargeOrder.DoesNotExist`` for an unknown tx_no.
    """
    now = timezone.now()
    pending = RechargeOrder.objects.filter(tx_no=tx_no, status=Status.PENDING)
    with transaction.atomic():
        moved = pending.filter(only_if or Q()).update(
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
                data=recharge_result(order),
            )
    return order, bool(moved)


def _new_api_key() -> str:
    return f"sk_{secrets.token_urlsafe(32)}"


def _new_webhook_secret() -> str:
    return f"whsec_{b64encode(secrets.token_bytes(32)).decode()}"


def _new_tx_no() -> str:
    """Date prefix for humans, 80 random bits so it cannot be guessed or enumerated."""
    return f"{timezone.now():%Y%m%d}{secrets.token_hex(10)}"
