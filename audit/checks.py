"""Do the books balance? The operator's cross-check of payments against accounts.

This is the one operator tool that deliberately reads both systems' tables: payments' orders,
accounts' recharges, ledger and balances, and the notifications outbox. The apps themselves
never do that: they talk only over HTTP. In production these would be two databases (two
companies) and this check would be run by someone with read access to both; here they share
one. It is read-only: it never writes, never calls a service, never sends anything, and on
PostgreSQL it reads inside a ``READ ONLY`` transaction, so the database itself refuses a write.

Checks, per payments order (keyed by ``tx_no``) and per accounts account:

- a succeeded order with no ledger credit (with its age: on a live system a recent one is
  just a notification in flight), and a credit whose order is unknown or did not succeed;
- a ``tx_no`` credited more than once, counted from the ledger rows themselves (the unique
  constraint should make it impossible; the audit does not take that on trust);
- amount, currency or account that differ between the order, the recharge and the credit,
  and final statuses that disagree;
- per account: sum of succeeded order amounts == sum of ledger credits == ``Account.balance``;
- recharges still pending although payments has a final answer, and exhausted notifications.

On PostgreSQL every table is read from one ``REPEATABLE READ`` snapshot, so a live system
is seen as of one instant. Elsewhere (SQLite) reads go accounts first, then payments: a
credit is only ever written after its order became final, so a live run can show a credit
"in flight" as uncredited (see its age) but never a credit without its payment.

``python manage.py audit`` prints the report and exits non-zero on any disagreement;
``make chaos`` and ``make demo`` use ``audit()`` for their verdict.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Account, LedgerEntry, Recharge
from notifications.models import Notification
from payments.contract import RechargeStatus
from payments.models import RechargeOrder

SUCCEEDED, PENDING = RechargeStatus.SUCCEEDED, RechargeStatus.PENDING


@dataclass(frozen=True)
class Uncredited:
    """A succeeded order with no ledger credit; ``age_seconds`` since payments finished it."""

    tx_no: str
    account_no: str
    amount: int
    age_seconds: float


@dataclass(frozen=True)
class UnbackedCredit:
    """A ledger credit whose order is unknown (``order_status`` None) or did not succeed."""

    tx_no: str
    account_no: str
    amount: int
    order_status: int | None


@dataclass(frozen=True)
class DoubleCredit:
    """A ``tx_no`` with ``entries`` ledger rows (anything but one is wrong)."""

    tx_no: str
    entries: int


@dataclass(frozen=True)
class Mismatch:
    """``what`` (e.g. ``"ledger amount"``) is ``payments`` at payments, ``accounts`` here."""

    tx_no: str
    what: str
    payments: object
    accounts: object


@dataclass(frozen=True)
class NotClosed:
    """A recharge still pending although payments finished its order ``age_seconds`` ago."""

    tx_no: str
    out_trade_no: str
    order_status: int
    age_seconds: float


@dataclass(frozen=True)
class Exhausted:
    """A notification whose retry window closed: it waits for staff."""

    notification_id: str
    subject: str
    attempts: int
    last_error: str


@dataclass(frozen=True)
class AccountTotals:
    """One account's money three ways, in minor units of ``currency``."""

    account_no: str
    currency: str
    succeeded: int  # sum of succeeded payments orders for this account_no
    credited: int  # sum of its ledger credits
    balance: int  # Account.balance
    orders: int  # succeeded orders
    credits: int  # ledger rows

    @property
    def balanced(self) -> bool:
        return self.succeeded == self.credited == self.balance and self.orders == self.credits


@dataclass
class AuditReport:
    """Every disagreement found, and the per-account totals."""

    uncredited: list[Uncredited] = field(default_factory=list)
    unbacked_credits: list[UnbackedCredit] = field(default_factory=list)
    double_credits: list[DoubleCredit] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    not_closed: list[NotClosed] = field(default_factory=list)
    exhausted: list[Exhausted] = field(default_factory=list)
    accounts: list[AccountTotals] = field(default_factory=list)

    @property
    def unbalanced_accounts(self) -> list[AccountTotals]:
        return [totals for totals in self.accounts if not totals.balanced]

    @property
    def books_balance(self) -> bool:
        """Money agrees: every successful payment credited once, nothing else credited, and
        every account's balance is its ledger."""
        return not (
            self.uncredited
            or self.unbacked_credits
            or self.double_credits
            or self.mismatches
            or self.unbalanced_accounts
        )

    @property
    def clean(self) -> bool:
        """The books balance and nothing is left for staff (open recharges, exhausted)."""
        return self.books_balance and not (self.not_closed or self.exhausted)

    def problems(self) -> list[str]:
        """One line per disagreement, for people."""
        lines = [
            f"succeeded, not credited: {u.tx_no} {u.amount} to {u.account_no} "
            f"({u.age_seconds:.1f}s ago)"
            for u in self.uncredited
        ]
        lines += [
            f"credited, not succeeded: {c.tx_no} {c.amount} to {c.account_no} "
            f"(order status {c.order_status})"
            for c in self.unbacked_credits
        ]
        lines += [f"credited {d.entries} times: {d.tx_no}" for d in self.double_credits]
        lines += [
            f"{m.what} differs for {m.tx_no}: payments {m.payments!r}, accounts {m.accounts!r}"
            for m in self.mismatches
        ]
        lines += [
            f"account {a.account_no}: succeeded {a.succeeded} ({a.orders} orders), ledger "
            f"{a.credited} ({a.credits} credits), balance {a.balance} {a.currency}"
            for a in self.unbalanced_accounts
        ]
        lines += [
            f"recharge {n.out_trade_no} still pending; payments says {n.order_status} "
            f"({n.age_seconds:.1f}s ago)"
            for n in self.not_closed
        ]
        lines += [
            f"notification exhausted: {e.notification_id} for {e.subject} after "
            f"{e.attempts} attempts ({e.last_error})"
            for e in self.exhausted
        ]
        return lines


@dataclass
class Snapshot:
    """Plain rows read from both systems (dicts, as ``QuerySet.values`` gives them)."""

    now: datetime
    accounts: list[dict]
    ledger: list[dict]
    recharges: list[dict]
    orders: list[dict]
    exhausted: list[dict]


def snapshot_read(*, merchant=None) -> Snapshot:
    """Read every row the audit compares. ``merchant`` limits payments' orders to one
    merchant (by default every order is taken to be accounts'; true of the dev stack).

    On PostgreSQL, outside any transaction, the reads share one ``REPEATABLE READ, READ
    ONLY`` transaction: a consistent snapshot the database will not let write. Inside a
    caller's transaction (a test) they simply join it. Everything is loaded into memory:
    fine for the demo, chaos runs and a test; a production audit would walk the orders in
    batches."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return _read(merchant)
    # SQLite: no transaction, since the project's SQLite transactions begin IMMEDIATE and
    # would take the write lock; the read order (accounts first) keeps the report sound.
    return _read(merchant)


def _read(merchant) -> Snapshot:
    now = timezone.now()
    accounts = list(Account.objects.values("id", "account_no", "currency", "balance"))
    ledger = list(
        LedgerEntry.objects.values(
            "tx_no", "amount", "currency", account_no=F("account__account_no")
        )
    )
    recharges = list(
        Recharge.objects.values(
            "out_trade_no",
            "tx_no",
            "amount",
            "currency",
            "status",
            account_no=F("account__account_no"),
        )
    )
    orders = RechargeOrder.objects.all()
    if merchant is not None:
        orders = orders.filter(merchant=merchant)
    orders = list(
        orders.values(
            "tx_no",
            "out_trade_no",
            "account_no",
            "amount",
            "currency",
            "status",
            "created_at",
            "finished_at",
        )
    )
    exhausted = list(
        Notification.objects.filter(state=Notification.State.EXHAUSTED).values(
            "id", "subject", "attempt_count", "last_error"
        )
    )
    return Snapshot(now, accounts, ledger, recharges, orders, exhausted)


def audit(*, merchant=None) -> "AuditReport":
    """Read both systems and compare them; see the module docstring. Read-only."""
    return audit_snapshot(snapshot_read(merchant=merchant))


def audit_snapshot(snapshot: Snapshot) -> AuditReport:
    """Compare the rows of ``snapshot`` (pure: no database access)."""
    report = AuditReport()
    orders = {order["tx_no"]: order for order in snapshot.orders}
    recharges = {recharge["out_trade_no"]: recharge for recharge in snapshot.recharges}
    entries_per_tx = Counter(entry["tx_no"] for entry in snapshot.ledger)
    ledger = {entry["tx_no"]: entry for entry in snapshot.ledger}

    def age(order) -> float:
        return (snapshot.now - (order["finished_at"] or order["created_at"])).total_seconds()

    report.double_credits = [
        DoubleCredit(tx_no, count) for tx_no, count in sorted(entries_per_tx.items()) if count > 1
    ]
    for tx_no, order in orders.items():
        entry = ledger.get(tx_no)
        if order["status"] == SUCCEEDED and entry is None:
            report.uncredited.append(
                Uncredited(tx_no, order["account_no"], order["amount"], age(order))
            )
        if entry is not None:
            for what in ("amount", "currency", "account_no"):
                if entry[what] != order[what]:
                    report.mismatches.append(
                        Mismatch(tx_no, f"ledger {what}", order[what], entry[what])
                    )
        _compare_recharge(report, order, recharges.get(order["out_trade_no"]), age(order))
    for entry in snapshot.ledger:
        order = orders.get(entry["tx_no"])
        if order is None or order["status"] != SUCCEEDED:
            report.unbacked_credits.append(
                UnbackedCredit(
                    entry["tx_no"],
                    entry["account_no"],
                    entry["amount"],
                    order and order["status"],
                )
            )
    report.accounts = _account_totals(snapshot, report)
    report.exhausted = [
        Exhausted(str(row["id"]), row["subject"], row["attempt_count"], row["last_error"])
        for row in snapshot.exhausted
    ]
    return report


def _compare_recharge(report: AuditReport, order: dict, recharge: dict | None, age: float):
    tx_no = order["tx_no"]
    if recharge is None:
        report.mismatches.append(Mismatch(tx_no, "recharge", order["out_trade_no"], None))
        return
    for what in ("amount", "currency", "account_no", "tx_no"):
        if recharge[what] is not None and recharge[what] != order[what]:
            report.mismatches.append(
                Mismatch(tx_no, f"recharge {what}", order[what], recharge[what])
            )
    if recharge["status"] == PENDING and order["status"] != PENDING:
        report.not_closed.append(NotClosed(tx_no, order["out_trade_no"], order["status"], age))
    elif recharge["status"] != PENDING and recharge["status"] != order["status"]:
        report.mismatches.append(Mismatch(tx_no, "status", order["status"], recharge["status"]))


def _account_totals(snapshot: Snapshot, report: AuditReport) -> list[AccountTotals]:
    succeeded, orders = defaultdict(int), Counter()
    for order in snapshot.orders:
        if order["status"] == SUCCEEDED:
            succeeded[order["account_no"]] += order["amount"]
            orders[order["account_no"]] += 1
    credited, credits = defaultdict(int), Counter()
    for entry in snapshot.ledger:
        credited[entry["account_no"]] += entry["amount"]
        credits[entry["account_no"]] += 1
    known = {account["account_no"] for account in snapshot.accounts}
    for account_no in sorted(set(orders) - known):
        report.mismatches.append(Mismatch("*", "account", account_no, None))
    return [
        AccountTotals(
            account_no=account["account_no"],
            currency=account["currency"],
            succeeded=succeeded[account["account_no"]],
            credited=credited[account["account_no"]],
            balance=account["balance"],
            orders=orders[account["account_no"]],
            credits=credits[account["account_no"]],
        )
        for account in sorted(snapshot.accounts, key=lambda account: account["account_no"])
    ]
