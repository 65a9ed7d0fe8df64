"""Scenario 4, scan cost: the per-tick cost of the sweeper (``notifications.sweep``) and of
reconciliation (``accounts.reconcile_pending``) as their tables grow, with the same 100 rows
due at every size, and the query plans behind them.

The tables hold a history: every filler row is final (notifications delivered or exhausted,
recharges and orders succeeded or failed), plus a fixed set that is pending but not yet due
(notifications waiting for a later retry, recharges too young to reconcile) and the ``due``
rows a tick must find. Fillers are bulk-loaded server-side (``INSERT … SELECT`` over a
generated series: ``generate_series`` on PostgreSQL, a recursive CTE on SQLite), never row by
row. On PostgreSQL the tables are ``ANALYZE``d after each load, as autovacuum would.

Each tick is the real task body (``notifications_sweep()``, ``recharges_reconcile_pending()``)
and includes what it does for the due rows: the sweeper counts them (up to
``NOTIFY_SWEEP_WAKES`` × ``NOTIFY_CLAIM_BATCH``) and publishes one wake-up per claim batch
(2 for 100 due rows), the reconciliation makes 100 GETs to the payments API. Those parts do
not depend on the table size, so the selectors' queries are also timed alone ("query"),
which is what must not grow; each query's plan is that of the SQL the selector really ran.
Between ticks the due rows are made due again (not timed).
"""

import re
import statistics
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

NOTIFICATION_BODY = (
    '{"id":"msg_0","type":"recharge.succeeded","created_at":"2026-01-01T00:00:00+00:00",'
    '"data":{"tx_no":"20260101000000000000000000","out_trade_no":"R000000000000000000",'
    '"account_no":"AC000000000001","amount":1234,"currency":"CNY","status":100,'
    '"paid_at":"2026-01-01T00:00:00+00:00"}}'
)
TABLES = ("notifications", "recharges", "orders")
TARGET_URL = "http://127.0.0.1:9/notify/"


def _sql(vendor: str):
    """Expressions for the series value ``x`` on ``vendor``."""
    if vendor == "postgresql":
        return {
            "text": lambda prefix: f"'{prefix}' || lpad(x::text, 12, '0')",
            "uuid": "lpad(to_hex(x), 32, '0')::uuid",
            "json": "CAST(%s AS jsonb)",
            "series": lambda: ("", "FROM generate_series(%s, %s - 1) AS s(x)"),
        }
    if vendor == "sqlite":
        return {
            "text": lambda prefix: f"printf('{prefix}%%012d', x)",
            "uuid": "printf('%%032x', x)",
            "json": "%s",
            "series": lambda: (
                "WITH RECURSIVE s(x) AS "
                "(SELECT %s UNION ALL SELECT x + 1 FROM s WHERE x + 1 < %s) ",
                "FROM s",
            ),
        }
    raise NotImplementedError(f"scan cost supports PostgreSQL and SQLite, not {vendor}")


def _dt(value):
    return connection.ops.adapt_datetimefield_value(value)


def _insert_series(model, start: int, stop: int, columns: dict[str, tuple[str, list]]) -> None:
    """INSERT rows ``start`` ≤ x < ``stop`` into ``model``'s table, each column given as
    (SQL expression over x, its parameters), keyed by field name."""
    fields = {field.name: field for field in model._meta.concrete_fields}
    missing = [
        name
        for name, field in fields.items()
        if name not in columns and not field.null and not (field.primary_key and field.auto_created)
    ]
    if missing:
        raise RuntimeError(f"bulk load of {model.__name__} does not fill {missing}")
    sql = _sql(connection.vendor)
    prefix, source = sql["series"]()
    names = list(columns)
    select = ", ".join(columns[name][0] for name in names)
    params = [param for name in names for param in columns[name][1]]
    column_list = ", ".join(connection.ops.quote_name(fields[name].column) for name in names)
    table = connection.ops.quote_name(model._meta.db_table)
    statement = f"{prefix}INSERT INTO {table} ({column_list}) SELECT {select} {source}"
    # SQLite's series is a CTE before the INSERT: its bounds come first.
    params = [start, stop, *params] if prefix else [*params, start, stop]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


class Tables:
    """The three tables of the scenario and what they hold."""

    def __init__(self, *, merchant, account, due: int, tag: str = "SC"):
        from notifications.services import endpoint_id_for

        self.merchant, self.account, self.due, self.tag = merchant, account, due, tag
        self.endpoint_id = endpoint_id_for(sender_key=merchant.app_id, url=TARGET_URL)
        self.rows = dict.fromkeys(TABLES, 0)
        self.filled = 0  # filler rows per table so far (x < filled)

    def create_fixtures(self) -> None:
        """The due rows, and as many pending-but-not-due ones, through the ORM in bulk."""
        from accounts.models import Recharge
        from notifications.models import Notification
        from payments.models import RechargeOrder

        now = timezone.now()
        tag, due = self.tag, self.due
        notifications = [
            Notification(
                sender_key=self.merchant.app_id,
                subject=f"{tag}N{number:09d}",
                event_type="recharge.succeeded",
                target_url=TARGET_URL,
                endpoint_id=self.endpoint_id,
                body=NOTIFICATION_BODY,
                attempt_count=1,
                created_at=now - timedelta(minutes=5),
                # The first ``due`` are due for a retry; the rest wait for a later one.
                next_attempt_at=now - timedelta(seconds=1)
                if number < due
                else now + timedelta(days=1),
            )
            for number in range(2 * due)
        ]
        Notification.objects.bulk_create(notifications, batch_size=500)
        orders, recharges = [], []
        for number in range(2 * due):
            common = {
                "out_trade_no": f"{tag}R{number:09d}",
                "tx_no": f"{tag}TX{number:09d}",
                "amount": 1000 + number,
                "currency": self.account.currency,
            }
            orders.append(
                RechargeOrder(
                    merchant=self.merchant,
                    account_no=self.account.account_no,
                    notify_url="http://127.0.0.1:9/notify/",
                    return_url="http://127.0.0.1:9/",
                    **common,
                )
            )
            recharges.append(Recharge(account=self.account, **common))
        RechargeOrder.objects.bulk_create(orders, batch_size=500)
        Recharge.objects.bulk_create(recharges, batch_size=500)
        # auto_now_add ignores a given value: the due recharges are made old afterwards.
        old = now - timedelta(hours=1)
        Recharge.objects.filter(out_trade_no__in=self.due_out_trade_nos()).update(
            created_at=old, updated_at=old
        )
        self.rows = dict.fromkeys(TABLES, 2 * due)

    def due_subjects(self) -> list[str]:
        return [f"{self.tag}N{number:09d}" for number in range(self.due)]

    def due_out_trade_nos(self) -> list[str]:
        return [f"{self.tag}R{number:09d}" for number in range(self.due)]

    def grow(self, size: int) -> float:
        """Bulk-load final filler rows until each table holds ``size`` rows; seconds taken."""
        from accounts.models import Recharge
        from notifications.models import Notification
        from payments.models import RechargeOrder

        target = size - 2 * self.due
        start, stop = self.filled, target
        if stop <= start:
            return 0.0
        sql = _sql(connection.vendor)
        old = timezone.now() - timedelta(days=30)
        began = time.perf_counter()
        with transaction.atomic():
            _insert_series(
                Notification,
                start,
                stop,
                {
                    "id": (sql["uuid"], []),
                    "sender_key": ("%s", [self.merchant.app_id]),
                    "subject": (sql["text"]("FILLTX"), []),
                    "event_type": ("'recharge.succeeded'", []),
                    "target_url": ("%s", [TARGET_URL]),
                    "endpoint": ("%s", [self.endpoint_id]),
                    "body": ("%s", [NOTIFICATION_BODY]),
                    # 1 in 100 exhausted, the rest delivered: history, nothing to do.
                    "state": ("CASE WHEN x %% 100 = 0 THEN 'exhausted' ELSE 'delivered' END", []),
                    "attempt_count": ("CASE WHEN x %% 100 = 0 THEN 15 ELSE 1 END", []),
                    "next_attempt_at": ("%s", [_dt(old)]),
                    "created_at": ("%s", [_dt(old)]),
                    "delivered_at": ("CASE WHEN x %% 100 = 0 THEN NULL ELSE %s END", [_dt(old)]),
                    "last_status_code": ("CASE WHEN x %% 100 = 0 THEN 503 ELSE 204 END", []),
                    "last_error": ("''", []),
                },
            )
            final = "CASE WHEN x %% 10 = 0 THEN 200 ELSE 100 END"  # 1 in 10 failed
            _insert_series(
                RechargeOrder,
                start,
                stop,
                {
                    "merchant": ("%s", [self.merchant.pk]),
                    "out_trade_no": (sql["text"]("FILLR"), []),
                    "tx_no": (sql["text"]("FILLTX"), []),
                    "account_no": ("%s", [self.account.account_no]),
                    "amount": ("1000 + x %% 9000", []),
                    "currency": ("%s", [self.account.currency]),
                    "notify_url": ("'http://127.0.0.1:9/notify/'", []),
                    "return_url": ("'http://127.0.0.1:9/'", []),
                    "status": (final, []),
                    "created_at": ("%s", [_dt(old)]),
                    "paid_at": ("CASE WHEN x %% 10 = 0 THEN NULL ELSE %s END", [_dt(old)]),
                    "finished_at": ("%s", [_dt(old)]),
                    "failure_reason": ("CASE WHEN x %% 10 = 0 THEN 'declined' ELSE '' END", []),
                },
            )
            _insert_series(
                Recharge,
                start,
                stop,
                {
                    "account": ("%s", [self.account.pk]),
                    "out_trade_no": (sql["text"]("FILLR"), []),
                    "tx_no": (sql["text"]("FILLTX"), []),
                    "amount": ("1000 + x %% 9000", []),
                    "currency": ("%s", [self.account.currency]),
                    "status": (final, []),
                    "cashier_url": ("''", []),
                    "failure_reason": ("CASE WHEN x %% 10 = 0 THEN 'declined' ELSE '' END", []),
                    "closed_by": ("'notification'", []),
                    "created_at": ("%s", [_dt(old)]),
                    "updated_at": ("%s", [_dt(old)]),
                },
            )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for model in (Notification, RechargeOrder, Recharge):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        self.filled = stop
        self.rows = dict.fromkeys(TABLES, size)
        return time.perf_counter() - began

    def make_due_again(self) -> None:
        """Undo what a tick did to the due rows (not timed)."""
        from accounts.models import Recharge
        from notifications.models import Notification

        Notification.objects.filter(subject__in=self.due_subjects()).update(
            state=Notification.State.PENDING
        )
        Recharge.objects.filter(out_trade_no__in=self.due_out_trade_nos()).update(
            last_checked_at=None
        )


def _queries():
    """The selectors' queries as the ticks run them: (name, callable that runs it) pairs."""
    from accounts.selectors import recharges_to_reconcile
    from notifications.selectors import notifications_due_count, notifications_orphaned

    now = timezone.now()
    up_to = settings.NOTIFY_SWEEP_WAKES * settings.NOTIFY_CLAIM_BATCH
    return [
        ("sweep: due", lambda: notifications_due_count(now=now, up_to=up_to)),
        (
            "sweep: orphaned",
            lambda: list(notifications_orphaned(now=now)[: settings.NOTIFY_SWEEP_BATCH]),
        ),
        ("reconcile: pending", lambda: list(recharges_to_reconcile(now=now))),
    ]


def time_queries() -> dict[str, float]:
    """Milliseconds to run and fetch each selector's query once."""
    timings = {}
    with transaction.atomic():
        for name, run in _queries():
            began = time.perf_counter()
            run()
            timings[name] = (time.perf_counter() - began) * 1000
    return timings


def explain() -> dict[str, dict]:
    """Each query's plan (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite) and
    whether it reads the growing tables only through indexes (no sequential or full scan of
    them; a small table joined in, such as the accounts or endpoints, may be scanned)."""
    from accounts.models import Recharge
    from notifications.models import Notification
    from payments.models import RechargeOrder

    tables = "|".join(m._meta.db_table for m in (Notification, Recharge, RechargeOrder))
    plans = {}
    with transaction.atomic():
        for name, run in _queries():
            with CaptureQueriesContext(connection) as captured:
                run()
            sql = captured.captured_queries[-1]["sql"]
            if connection.vendor == "postgresql":
                plan = _plan(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                full_scan = re.search(rf"Seq Scan on ({tables})\b", plan)
            else:
                plan = _plan(f"EXPLAIN QUERY PLAN {sql}")
                # "SCAN t" reads the whole table (or a whole index); "SEARCH t USING INDEX"
                # reads a range.
                full_scan = re.search(rf"\bSCAN ({tables})\b", plan)
            plans[name] = {"plan": plan, "uses_index": not full_scan}
    return plans


def _plan(statement: str) -> str:
    """The plan's lines, as EXPLAIN returns them (SQLite: the detail column)."""
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def sweep_tick(tables: Tables) -> tuple[float, dict]:
    from notifications.services import notifications_sweep

    began = time.perf_counter()
    outcome = notifications_sweep()
    return (time.perf_counter() - began) * 1000, outcome


def reconcile_tick(tables: Tables) -> tuple[float, dict]:
    from accounts.services import recharges_reconcile_pending

    began = time.perf_counter()
    outcome = recharges_reconcile_pending()
    return (time.perf_counter() - began) * 1000, outcome


def measure(tables: Tables, *, ticks: int, after_tick=None) -> dict:
    """Median milliseconds per tick (whole task body, then each query alone) at the current
    size, the ticks' outcomes, and the plans."""
    results = {"rows": dict(tables.rows)}
    for name, tick in (("sweep", sweep_tick), ("reconcile", reconcile_tick)):
        durations, outcomes = [], []
        for _ in range(ticks):
            tables.make_due_again()
            duration, outcome = tick(tables)
            durations.append(duration)
            outcomes.append(outcome)
            if after_tick:
                after_tick()
        results[f"{name}_tick_ms"] = round(statistics.median(durations), 2)
        results[f"{name}_outcome"] = outcomes[-1]
    tables.make_due_again()
    query_runs = [time_queries() for _ in range(max(3, ticks))]
    results["query_ms"] = {
        name: round(statistics.median(run[name] for run in query_runs), 3) for name in query_runs[0]
    }
    results["plans"] = explain()
    return results


def run(
    *, merchant, account, sizes: list[int], due: int, ticks: int, progress=None, after_tick=None
) -> dict:
    """Grow the tables through ``sizes`` and measure at each; ratios largest/smallest."""
    tables = Tables(merchant=merchant, account=account, due=due)
    tables.create_fixtures()
    steps = []
    for size in sizes:
        if progress:
            progress.set_postfix_str(f"scan: loading {size:,} rows per table")
        load_seconds = tables.grow(size)
        if progress:
            progress.set_postfix_str(f"scan: ticks at {size:,}")
        step = measure(tables, ticks=ticks, after_tick=after_tick)
        step.update(size=size, load_seconds=round(load_seconds, 2))
        steps.append(step)
    first, last = steps[0], steps[-1]

    def ratio(get):
        low, high = get(first), get(last)
        return round(high / low, 3) if low else None

    query_total = lambda step: sum(step["query_ms"].values())  # noqa: E731
    return {
        "vendor": connection.vendor,
        "due": due,
        "ticks": ticks,
        "steps": steps,
        "ratios": {
            "sweep_tick": ratio(lambda step: step["sweep_tick_ms"]),
            "reconcile_tick": ratio(lambda step: step["reconcile_tick_ms"]),
            "queries": ratio(query_total),
        },
        "plans_use_indexes": all(
            plan["uses_index"] for step in steps for plan in step["plans"].values()
        ),
    }
