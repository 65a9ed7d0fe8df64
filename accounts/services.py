"""Writes on the accounts side: accounts, recharges, applying results, reconciliation.

``recharge_apply_result`` is the one code path that closes a recharge, whether the result
came in a notification or from reconciliation; it is idempotent and safe under concurrency:
the status is read and moved under a row lock, the ledger's unique tx_no backs it up.
"""

import hmac
import logging
import math
import secrets
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from core.batches import batches_within_budget
from core.throttling import throttle_hit

from . import metrics
from .models import Account, InboundNotification, LedgerEntry, Recharge
from .payments_client import PaymentsApiError, PaymentsClient
from .selectors import receipts_prunable, recharges_pending_count, recharges_to_reconcile

logger = logging.getLogger(__name__)
Status = Recharge.Status
Outcome = InboundNotification.Outcome


class UnknownRecharge(Exception):
    """No recharge of ours has this out_trade_no."""


class WebhookIdReused(Exception):
    """A webhook-id already received with a different payload: a forgery or a sender bug,
    never applied (a genuine retry carries the same bytes)."""


class RechargeRefused(Exception):
    """A recharge the user may not start now; nothing was written and payments was not
    called. The message, for the user, says why and what to do."""


class RechargeRateExceeded(RechargeRefused):
    """The user started more than ``ACCOUNTS_RECHARGE_USER_RATE`` recharges in the window."""


class RechargePendingLimit(RechargeRefused):
    """``ACCOUNTS_RECHARGE_PENDING_MAX`` of the user's recharges are still pending."""


class ResultMismatch(Exception):
    """A result disagrees with the recharge we started (amount, currency, account, tx_no, or a
    final status other than the one already recorded); it is never applied."""


def account_create(*, user, currency: str) -> Account:
    """Open an account for ``user`` with a random account number and a zero balance."""
    return Account.objects.create(
        user=user, currency=currency, account_no=f"AC{secrets.randbelow(10**12):012d}"
    )


def recharge_start(*, account: Account, amount: int, client: PaymentsClient) -> Recharge:
    """Record a recharge and create its order at payments; the result has a ``cashier_url``.

    Refused before anything is written or payments is called, so that one user cannot spend
    the order-creation budget all users share at payments: ``RechargeRateExceeded`` past
    ``ACCOUNTS_RECHARGE_USER_RATE`` starts by the account's user (counted in the cache, also
    when refused; let through if the cache is down), ``RechargePendingLimit`` while
    ``ACCOUNTS_RECHARGE_PENDING_MAX`` of the account's recharges are pending.

    The row is written before the API call, so a call that times out is not forgotten:
    reconciliation repeats the (idempotent) create to learn its tx_no. Raises PaymentsApiError.
    """
    wait = throttle_hit(
        key=f"throttle_recharge_start_{account.user_id}",
        rate=settings.ACCOUNTS_RECHARGE_USER_RATE,
        scope="recharge_start",
    )
    if wait is not None:
        raise RechargeRateExceeded(
            "You have started too many recharges in a short time; please try again in "
            f"{math.ceil(wait)} seconds."
        )
    with transaction.atomic():
        # The account row locked, so that a user's simultaneous submissions are counted one
        # after another and cannot together pass the cap.
        Account.objects.select_for_update().get(pk=account.pk)
        limit = settings.ACCOUNTS_RECHARGE_PENDING_MAX
        if recharges_pending_count(account=account, now=timezone.now()) >= limit:
            raise RechargePendingLimit(
                f"You already have {limit} recharges waiting for payment: complete one of "
                "them, or wait until an unpaid one expires, before starting another."
            )
        recharge = Recharge.objects.create(
            account=account,
            out_trade_no=f"R{timezone.now():%Y%m%d%H%M%S}{secrets.token_hex(6)}",
            amount=amount,
            currency=account.currency,
        )
    order = client.recharge_create(**_order_request(recharge))
    recharge.tx_no, recharge.cashier_url = order["tx_no"], order["cashier_url"]
    recharge.save(update_fields=["tx_no", "cashier_url", "updated_at"])
    return recharge


def recharge_apply_result(*, result: dict, source: str) -> str:
    """Apply a payments result (notification ``data`` or a queried order) to our recharge.

    ``result`` has tx_no, out_trade_no, account_no, amount (minor units), currency, status,
    and optionally failure_reason (kept on a failed recharge to tell the user why).
    Returns ``"applied"``, ``"duplicate"`` (already in that final state) or ``"pending"``.
    Raises ``UnknownRecharge`` or ``ResultMismatch``; nothing is written then.
    """
    with transaction.atomic():
        return _apply_result(result, source)


def _apply_result(result: dict, source: str) -> str:
    """``recharge_apply_result`` in the caller's transaction.

    The recharge row is locked (``SELECT … FOR UPDATE``; on SQLite the transaction holds the
    write lock from its start) and its status read under that lock, so concurrent deliveries
    and reconciliation apply a result once; the ledger's unique tx_no backs that up. Every
    check that can raise comes before the first write, so a caller can still record a
    rejection in the same transaction without a savepoint (bench "receiver throughput").
    """
    recharge = (
        Recharge.objects.select_for_update()
        .select_related("account")
        .filter(out_trade_no=result["out_trade_no"])
        .first()
    )
    if recharge is None:
        raise UnknownRecharge(f"no recharge with out_trade_no {result['out_trade_no']}")
    _check_agrees(recharge, result)
    if not recharge.tx_no and Recharge.objects.filter(tx_no=result["tx_no"]).exists():
        # Ours has no tx_no yet (its create call never returned): the one offered must not
        # be another recharge's, or the status update would fail on the unique tx_no.
        raise ResultMismatch(f"tx_no {result['tx_no']!r} belongs to another recharge")
    if result["status"] == Status.PENDING:
        return "pending"
    if recharge.status != Status.PENDING:
        if recharge.status != result["status"]:
            raise ResultMismatch(f"recharge already {Status(recharge.status).label.lower()}")
        return "duplicate"
    Recharge.objects.filter(pk=recharge.pk).update(
        status=result["status"],
        tx_no=result["tx_no"],
        failure_reason=_failure_reason(result),
        closed_by=source,
        updated_at=timezone.now(),
    )
    if result["status"] == Status.SUCCEEDED:
        _credit(recharge, tx_no=result["tx_no"], source=source)
    return "applied"


def notification_receive(*, webhook_id: str, payload: dict, payload_sha256: str) -> tuple[str, str]:
    """Handle a verified notification: log its receipt, apply its ``data``.

    Returns ``(outcome, reason)`` with outcome one of ``InboundNotification.Outcome``.
    Rejections (unknown recharge, mismatch) are recorded for staff before being returned.
    ``payload_sha256`` is the SHA-256 hex of the raw body: a webhook-id seen before must come
    with the same one, else ``WebhookIdReused`` is raised and nothing is recorded or applied.
    A replay of the same bytes goes through the idempotent path and changes nothing.

    One transaction for the receipt, the result and the outcome: one commit per notification
    rather than one per statement (bench "receiver throughput"; on SQLite, one write lock).
    A rejection is still recorded: the apply raises before it writes anything.
    """
    data = payload["data"]
    with transaction.atomic():
        receipt = _receipt(webhook_id, data, payload_sha256)
        if receipt.outcome == Outcome.DUPLICATE:
            # These very bytes were applied before and a final status never changes: the
            # receipt already says so, and the recharge is not even read (bench "receiver
            # throughput": a sender's retries are the common repeat).
            return Outcome.DUPLICATE, ""
        try:
            applied = _apply_result(data, LedgerEntry.Source.NOTIFICATION)
        except (UnknownRecharge, ResultMismatch) as exc:
            logger.warning("rejected notification %s: %s", webhook_id, exc)
            return _settle(receipt, Outcome.REJECTED, str(exc))
        if applied == "pending":  # payments notifies final statuses only
            return _settle(receipt, Outcome.REJECTED, "status is not final")
        outcome = Outcome.APPLIED if applied == "applied" else Outcome.DUPLICATE
        return _settle(receipt, outcome, "")


def recharge_reconcile(*, recharge: Recharge, client: PaymentsClient) -> str:
    """Ask payments how ``recharge`` stands and apply the answer through the same path as a
    notification. Returns what ``recharge_apply_result`` returned.

    A recharge whose create call never returned has no tx_no yet: the create is repeated
    (idempotent on out_trade_no) to find the order. Raises PaymentsApiError,
    ResultMismatch, UnknownRecharge.
    """
    Recharge.objects.filter(pk=recharge.pk).update(last_checked_at=timezone.now())
    outcome = _query_and_apply(recharge, client)
    metrics.reconciliations_observe({outcome: 1})
    return outcome


def recharges_reconcile_pending() -> dict:
    """Beat: reconcile recharges pending longer than ``ACCOUNTS_RECONCILE_AFTER`` seconds,
    least recently checked first, at most ``ACCOUNTS_RECONCILE_BATCH`` a tick.

    Each recharge is claimed first by a conditional update of ``last_checked_at``, so
    overlapping runs (two beats, a tick slower than the interval) never query the same one
    twice. Stops the tick at the first unreachable-API error: the next tick resumes from the
    recharges checked longest ago. Returns counts by outcome.
    """
    client = PaymentsClient.from_settings()
    counts: Counter = Counter()
    now = timezone.now()
    for recharge in recharges_to_reconcile(now=now):
        claimed = Recharge.objects.filter(
            pk=recharge.pk, last_checked_at=recharge.last_checked_at
        ).update(last_checked_at=now)
        if not claimed:
            continue
        try:
            outcome = _query_and_apply(recharge, client)
        except PaymentsApiError as exc:
            logger.warning("reconciliation of %s: %s", recharge.out_trade_no, exc)
            outcome = "unreachable" if exc.status_code is None else "api_error"
        except (ResultMismatch, UnknownRecharge) as exc:
            logger.error("reconciliation of %s refused: %s", recharge.out_trade_no, exc)
            outcome = "mismatch"
        counts[outcome] += 1
        if outcome == "unreachable":
            break
    metrics.reconciliations_observe(counts)
    return dict(counts)


def receipts_prune(*, now: datetime, batch_size: int, budget_seconds: float) -> dict:
    """Beat: delete notification receipts last received more than
    ``ACCOUNTS_RECEIPT_RETENTION`` seconds before ``now``; never a recharge, a ledger entry
    or an account.

    Safe because a receipt only speeds up and records a repeat, it does not make it harmless:
    a notification whose receipt is gone is received as new and goes through
    ``recharge_apply_result``, where the recharge's final status makes it a duplicate and the
    ledger's unique tx_no forbids a second credit. The retention exceeds payments' retry
    window (about 24 h against 30 days by default, settings/accounts.py) so every retry still
    finds its receipt. Batches of at most ``batch_size``, one transaction each, oldest first;
    no new batch once ``budget_seconds`` have passed. Returns ``{"receipts": n, "batches": n,
    "more": bool}``, ``more`` true when the budget ran out first.
    """
    received_before = now - timedelta(seconds=settings.ACCOUNTS_RECEIPT_RETENTION)
    counts = batches_within_budget(
        delete_batch=lambda: _receipts_prune_batch(received_before, batch_size),
        budget_seconds=budget_seconds,
    )
    if counts["receipts"]:
        logger.info("pruned %(receipts)s notification receipts", counts)
    return counts


def _receipts_prune_batch(
    received_before: datetime, batch_size: int
) -> tuple[dict[str, int], bool]:
    with transaction.atomic():
        ids = list(
            receipts_prunable(received_before=received_before)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:batch_size]
        )
        # Filtered again on the time: a delivery that came in meanwhile keeps its receipt.
        deleted, _ = InboundNotification.objects.filter(
            pk__in=ids, last_received_at__lt=received_before
        ).delete()
    return {"receipts": deleted}, len(ids) == batch_size


def _query_and_apply(recharge: Recharge, client: PaymentsClient) -> str:
    if recharge.tx_no:
        order = client.recharge_get(tx_no=recharge.tx_no)
    else:
        order = client.recharge_create(**_order_request(recharge))
        Recharge.objects.filter(pk=recharge.pk, tx_no=None).update(
            tx_no=order["tx_no"], cashier_url=order["cashier_url"]
        )
    return recharge_apply_result(result=order, source=LedgerEntry.Source.RECONCILIATION)


def _order_request(recharge: Recharge) -> dict:
    base = settings.ACCOUNTS_PUBLIC_URL.rstrip("/")
    return_path = reverse(
        "accounts:recharge-status", kwargs={"out_trade_no": recharge.out_trade_no}
    )
    return {
        "out_trade_no": recharge.out_trade_no,
        "account_no": recharge.account.account_no,
        "amount": recharge.amount,
        "currency": recharge.currency,
        "notify_url": _notify_url(base),
        "return_url": base + return_path,
    }


def _notify_url(base: str) -> str:
    """Where payments should notify us: our notify API, or with ``ACCOUNTS_NOTIFY_TRANSPORT``
    ``queue`` our queue (scheme 1, accounts/queue_receiver.py)."""
    if settings.ACCOUNTS_NOTIFY_TRANSPORT == "queue":
        return f"queue://{settings.ACCOUNTS_NOTIFY_QUEUE}"
    return base + reverse("accounts:notify")


def _check_agrees(recharge: Recharge, result: dict) -> None:
    expected = {
        "account_no": recharge.account.account_no,
        "amount": recharge.amount,
        "currency": recharge.currency,
    }
    if recharge.tx_no:
        expected["tx_no"] = recharge.tx_no
    for field, value in expected.items():
        if result.get(field) != value:
            raise ResultMismatch(f"{field} {result.get(field)!r} does not match ours ({value!r})")
    if result.get("status") not in Status.values:
        raise ResultMismatch(f"unknown status {result.get('status')!r}")


def _failure_reason(result: dict) -> str:
    """The result's ``failure_reason`` for a failed one, else "". Optional in the contract
    (older notifications lack it) and unchecked in a queried order, hence bounded here."""
    if result["status"] != Status.FAILED:
        return ""
    return str(result.get("failure_reason") or "")[:32]


def _credit(recharge: Recharge, *, tx_no: str, source: str) -> None:
    LedgerEntry.objects.create(
        account=recharge.account,
        tx_no=tx_no,
        amount=recharge.amount,
        currency=recharge.currency,
        source=source,
    )
    Account.objects.filter(pk=recharge.account_id).update(balance=F("balance") + recharge.amount)


def _receipt(webhook_id: str, data: dict, payload_sha256: str) -> InboundNotification:
    """The receipt row for ``webhook_id``, created on first sight, its delivery count bumped;
    its ``outcome`` is already ``duplicate`` when these very bytes were applied before.

    Raises ``WebhookIdReused`` when the row was recorded with a different payload hash; the
    caller's transaction then rolls the bump back.
    """
    now = timezone.now()
    receipt = InboundNotification(
        webhook_id=webhook_id,
        tx_no=str(data.get("tx_no", ""))[:40],
        out_trade_no=str(data.get("out_trade_no", ""))[:64],
        payload_sha256=payload_sha256,
        deliveries=1,
        first_received_at=now,
        last_received_at=now,
    )
    receipt.pk, receipt.deliveries, recorded_sha256, receipt.outcome = _upsert_receipt(receipt)
    # Compared whatever the delivery count: a row an older version recorded without counting
    # its delivery (deliveries 0) must not let another payload through.
    if not recorded_sha256:  # received before payload hashes were kept
        InboundNotification.objects.filter(pk=receipt.pk).update(payload_sha256=payload_sha256)
    elif not hmac.compare_digest(recorded_sha256, payload_sha256):
        logger.warning("webhook-id %s replayed with a different payload", webhook_id)
        raise WebhookIdReused(
            f"webhook-id {webhook_id} was already received with a different payload"
        )
    return receipt


RECEIPT_COLUMNS = (
    "webhook_id",
    "tx_no",
    "out_trade_no",
    "payload_sha256",
    "deliveries",
    "outcome",
    "reason",
    "first_received_at",
    "last_received_at",
)


def _upsert_receipt(receipt: InboundNotification) -> tuple[int, int, str, str]:
    """Insert ``receipt``, or count one more delivery on the existing row and, if the same
    bytes were applied before, record this one as a duplicate: ``(pk, deliveries, recorded
    payload hash, outcome)``.

    One ``INSERT … ON CONFLICT (webhook_id) DO UPDATE … RETURNING`` (PostgreSQL; SQLite
    3.35+): race-safe, as the unique webhook_id decides between concurrent first deliveries
    (the second waits for the first to commit), and for a sender's retry the whole receipt
    in one round trip, where a read, an insert under a savepoint, an update, a re-read and
    the outcome's update were five (bench "receiver throughput").
    """
    meta = InboundNotification._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    fields = [meta.get_field(name) for name in RECEIPT_COLUMNS]
    current = {name: f"{table}.{quote(name)}" for name in RECEIPT_COLUMNS}
    applied = ", ".join(f"'{outcome}'" for outcome in (Outcome.APPLIED, Outcome.DUPLICATE))
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote('webhook_id')}) DO UPDATE SET "
        f"{quote('deliveries')} = {current['deliveries']} + 1, "
        f"{quote('last_received_at')} = excluded.{quote('last_received_at')}, "
        f"{quote('outcome')} = CASE WHEN {current['outcome']} IN ({applied}) "
        f"AND {current['payload_sha256']} = excluded.{quote('payload_sha256')} "
        f"THEN '{Outcome.DUPLICATE}' ELSE {current['outcome']} END "
        f"RETURNING {quote('id')}, {quote('deliveries')}, {quote('payload_sha256')}, "
        f"{quote('outcome')}"
    )
    params = [
        field.get_db_prep_save(getattr(receipt, field.attname), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _settle(receipt: InboundNotification, outcome: str, reason: str) -> tuple[str, str]:
    InboundNotification.objects.filter(pk=receipt.pk).update(
        outcome=outcome, reason=reason[:255], last_received_at=timezone.now()
    )
    return outcome, reason
