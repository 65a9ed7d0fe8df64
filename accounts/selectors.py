"""Reads on the accounts side."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q, QuerySet

from core.search import MATCHES_PER_SEARCHER, Match

from .models import Account, InboundNotification, LedgerEntry, Recharge


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


def account_records_search(*, term: str) -> list[Match]:
    """Staff's Find (``core.search``): this side's rows for an identifier quoted exactly —
    recharges by tx_no or out_trade_no, receipts by webhook-id, tx_no or out_trade_no,
    ledger entries by tx_no, accounts by account_no or username. A receipt leads to its
    tx_no, and so does a recharge (the order, its notifications, the ledger entry)."""
    limit = MATCHES_PER_SEARCHER
    recharges = Recharge.objects.filter(Q(tx_no=term) | Q(out_trade_no=term)).select_related(
        "account"
    )[:limit]
    receipts = InboundNotification.objects.filter(
        Q(webhook_id=term) | Q(tx_no=term) | Q(out_trade_no=term)
    ).order_by("-last_received_at")[:limit]
    entries = LedgerEntry.objects.filter(tx_no=term).select_related("account")[:limit]
    # Two lookups, not one OR across the join (which no index serves: a scan of accounts).
    accounts = [
        *Account.objects.filter(account_no=term)[:limit],
        *Account.objects.filter(user__username=term).exclude(account_no=term)[:limit],
    ][:limit]
    return [
        *(Match(r, _field_named(r, term, "tx_no", "out_trade_no"), (r.tx_no,)) for r in recharges),
        *(
            Match(r, _field_named(r, term, "webhook_id", "tx_no", "out_trade_no"), (r.tx_no,))
            for r in receipts
        ),
        *(Match(entry, "tx_no") for entry in entries),
        *(Match(a, "account_no" if a.account_no == term else "username") for a in accounts),
    ]


def _field_named(row, term: str, *names: str) -> str:
    """The first of ``names`` whose value on ``row`` is ``term``."""
    return next(name for name in names if getattr(row, name) == term)
