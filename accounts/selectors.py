"""Reads on the accounts side."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q, QuerySet

from .models import InboundNotification, Recharge


def recharges_to_reconcile(*, now: datetime) -> QuerySet:
    """Pending recharges older than ``ACCOUNTS_RECONCILE_AFTER`` seconds and not checked in
    that long either, never-checked and least recently checked first, at most
    ``ACCOUNTS_RECONCILE_BATCH``."""
    before = now - timedelta(seconds=settings.ACCOUNTS_RECONCILE_AFTER)
    return (
        Recharge.objects.filter(
            Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=before),
            status=Recharge.Status.PENDING,
            created_at__lt=before,
        )
        .select_related("account")
        .order_by(F("last_checked_at").asc(nulls_first=True), "created_at")[
            : settings.ACCOUNTS_RECONCILE_BATCH
        ]
    )


def recharges_pending_count(*, account, now: datetime) -> int:
    """How many of ``account``'s recharges are pending: not yet paid, declined or expired,
    and either answered by payments (a tx_no) or with their create call possibly still in
    flight (started within ``ACCOUNTS_API_TIMEOUT`` seconds). One whose create call failed
    (payments unreachable) no longer counts once that call is surely over: the user never
    reached a cashier for it, and counting it would lock them out for the order TTL after a
    short outage."""
    in_flight_since = now - timedelta(seconds=settings.ACCOUNTS_API_TIMEOUT)
    answered_or_in_flight = ~Q(tx_no=None) | Q(created_at__gte=in_flight_since)
    pending = Recharge.objects.filter(account=account, status=Recharge.Status.PENDING)
    return pending.filter(answered_or_in_flight).count()


def recharges_for_user(*, user) -> QuerySet:
    """The user's own recharges, newest first (the id breaks ties, so pages never overlap)."""
    return Recharge.objects.filter(account__user=user).order_by("-created_at", "-pk")


def recharges_pending_too_long(*, recharges: QuerySet, now: datetime) -> QuerySet:
    """Those of ``recharges`` still pending ``STUCK_AFTER`` seconds after they were started."""
    created_before = now - timedelta(seconds=settings.STUCK_AFTER)
    return recharges.filter(status=Recharge.Status.PENDING, created_at__lt=created_before)


def receipts_prunable(*, received_before: datetime) -> QuerySet:
    """Notification receipts last received before ``received_before``, oldest first: what
    retention may delete. A range of the last_received_at index, so taking the first N costs
    the same at any table size."""
    return InboundNotification.objects.filter(last_received_at__lt=received_before).order_by(
        "last_received_at"
    )
