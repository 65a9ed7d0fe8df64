"""Reads of merchants and orders."""

import hashlib
import hmac
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import OuterRef, Q, QuerySet
from django.http.request import validate_host
from django.utils import timezone

from core.search import MATCHES_PER_SEARCHER, Match
from notifications.netguard import url_refusal
from notifications.queues import SCHEME as QUEUE_SCHEME
from notifications.queues import queue_name
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
    """The active merchant owning ``api_key``, or None.

    The row is found by the key's first 16 characters (not secret: an index lookup); the
    rest is checked by comparing SHA-256 hashes in constant time. An unknown prefix still
    costs one comparison, so a miss and a near miss take the same time.
    """
    digest = api_key_hash(api_key)
    merchant = Merchant.objects.filter(api_key_prefix=api_key[:16], is_active=True).first()
    stored = merchant.api_key_hash if merchant else "0" * 64
    if hmac.compare_digest(stored, digest) and merchant is not None:
        return merchant
    return None


def merchant_webhook_secrets(sender_key: str) -> list[str]:
    """The ``whsec_`` secrets to sign a merchant's notifications with (``NOTIFY_SECRET_RESOLVER``):
    the current one, and while a roll's overlap lasts the previous one too.

    ``sender_key`` is the merchant's ``app_id``. Raises ``Merchant.DoesNotExist``.
    """
    current, previous, expires_at = Merchant.objects.values_list(
        "webhook_secret", "previous_webhook_secret", "previous_secret_expires_at"
    ).get(app_id=sender_key)
    if previous and expires_at is not None and expires_at > timezone.now():
        return [current, previous]
    return [current]


def merchant_ops_url(sender_key: str) -> str | None:
    """Where a merchant's operational notifications go (``NOTIFY_OPS_URL_RESOLVER``), or None.
    ``sender_key`` is the merchant's ``app_id``."""
    ops_url = Merchant.objects.filter(app_id=sender_key).values_list("ops_url", flat=True).first()
    return ops_url or None


def merchant_url_refusal(*, merchant: Merchant, url: str, notify: bool) -> str | None:
    """Why ``merchant`` may not use ``url`` as its notify_url (``notify``) or return_url, or
    None when it may.

    The URL must be http(s), carry no credentials, and name a host among the merchant's
    ``allowed_hosts`` (Django's ALLOWED_HOSTS rules: ``.example.com`` covers subdomains).
    A notify_url must also pass the SSRF guard: a literal or resolved address in a loopback,
    private, link-local, multicast or metadata range is refused unless
    ``NOTIFY_ALLOWED_NETWORKS`` names it (checked again when each notification is sent).

    A notify_url may instead be ``queue://<name>`` (scheme 1: published on the broker for an
    internal subscriber), for a ``name`` among the merchant's ``notify_queues`` only.
    """
    if url.startswith(QUEUE_SCHEME):
        return _queue_refusal(merchant=merchant, url=url, notify=notify)
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "Not a valid URL."
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        return "Must be an http:// or https:// URL."
    if parts.username is not None or parts.password is not None:
        return "Must not contain credentials (user:password@)."
    host = f"[{hostname}]" if ":" in hostname else hostname.rstrip(".")
    if not validate_host(host, merchant.allowed_hosts):
        return f"Host {hostname!r} is not among this merchant's allowed hosts."
    if notify:
        reason = url_refusal(url)
        if reason:
            return f"Refused destination: {reason}."
    return None


def _queue_refusal(*, merchant: Merchant, url: str, notify: bool) -> str | None:
    if not notify:
        return "Must be an http:// or https:// URL."
    name = queue_name(url)
    if name is None:
        return "A queue notify_url is queue://<name>, the name 1-40 of a-z, 0-9 or -."
    if name not in merchant.notify_queues:
        return f"Queue {name!r} is not among this merchant's notify queues."
    return None


def recharge_orders_for_merchant(*, merchant: Merchant) -> QuerySet:
    """Only this merchant's orders: every merchant-facing read goes through here."""
    return RechargeOrder.objects.filter(merchant=merchant)


def recharge_order_for_out_trade_no(
    *, merchant: Merchant, out_trade_no: str
) -> RechargeOrder | None:
    """``merchant``'s order numbered ``out_trade_no`` by the merchant itself, or None (also
    when another merchant has an order of that number: each merchant sees only its own)."""
    return recharge_orders_for_merchant(merchant=merchant).filter(out_trade_no=out_trade_no).first()


def recharge_order_deadline(order: RechargeOrder) -> datetime:
    """When ``order`` stops being payable: ``PAYMENTS_ORDER_TTL`` seconds after it was
    created (the sandbox channel's deadline; the expiry tick closes it after this)."""
    return order.created_at + timedelta(seconds=settings.PAYMENTS_ORDER_TTL)


def recharge_order_expiry_cutoff() -> datetime:
    """Orders created before this are past their deadline (``recharge_order_deadline``):
    unpayable, and expired by the tick."""
    return timezone.now() - timedelta(seconds=settings.PAYMENTS_ORDER_TTL)


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


def recharge_orders_search(*, term: str) -> list[Match]:
    """Staff's Find (``core.search``): orders whose tx_no, out_trade_no or account_no is
    exactly ``term``, newest first, and the merchant whose app_id it is. An order found by
    its tx_no or out_trade_no leads to its tx_no (its notifications, the receiver's rows)."""
    orders = (
        RechargeOrder.objects.filter(Q(tx_no=term) | Q(out_trade_no=term) | Q(account_no=term))
        .select_related("merchant")
        .order_by("-created_at")[:MATCHES_PER_SEARCHER]
    )
    matches = []
    for order in orders:
        via = next(f for f in ("tx_no", "out_trade_no", "account_no") if getattr(order, f) == term)
        # An account_no names every order of that account: no single case to follow.
        matches.append(Match(order, via, () if via == "account_no" else (order.tx_no,)))
    matches += [Match(m, "app_id") for m in Merchant.objects.filter(app_id=term)]
    return matches
