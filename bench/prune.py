"""Scenario 6, prune cost: one batch of the retention task (``notifications.prune``) as the
notifications table grows, the same batch size at every size.

The table holds ``size`` delivered notifications past their retention, each with
``attempts`` attempt rows, plus rows the prune must never take: for every 100 prunable, one
pending, one exhausted (both as old) and one delivered within the retention. Fillers are
bulk-loaded server-side as in the scan scenario (bench/scan.py). Each batch is the real task
body (``notifications_prune`` with a zero budget: exactly one batch) and deletes
``batch_size`` notifications and their attempts. The retention is set for this process so
that only this scenario's rows are past it (those of the others, made minutes or 30 days ago,
stay); the batch's selection is also EXPLAINed.
"""

import json
import re
import statistics
import time
from datetime import timedelta

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from .scan import NOTIFICATION_BODY, TARGET_URL, _dt, _insert_series, _plan, _sql

DAY = 86400
# Prunable rows are delivered this long ago; the retention used is shorter, and longer than
# anything another scenario writes (scan's history is 30 days old).
DELIVERED_DAYS_AGO = 400
RETENTION_DAYS = 300
KEPT_EVERY = 100  # one row of each kept kind per this many prunable ones
# What a real attempt row holds (notifications/http.py's headers as sent), so a batch deletes
# rows of their real size.
REQUEST_HEADERS = json.dumps(
    {
        "User-Agent": "recharge-notify",
        "Accept-Encoding": "identity",
        "Content-Type": "application/json",
        "webhook-id": "msg_" + "0" * 32,
        "webhook-timestamp": "1764252000",
        "webhook-signature": "v1," + "A" * 43 + "=",
    }
)


def _uuid(prefix: str) -> str:
    """A uuid per series value ``x``, under a hex ``prefix`` of its own (no clash with the
    scan scenario's ``lpad(x)`` ids)."""
    width = 32 - len(prefix)
    if connection.vendor == "postgresql":
        return f"('{prefix}' || lpad(to_hex(x), {width}, '0'))::uuid"
    return f"'{prefix}' || printf('%%0{width}x', x)"


class Table:
    """The notifications (and attempts) of the scenario, grown step by step."""

    def __init__(self, *, app_id: str, endpoint_id: int, attempts: int):
        self.app_id, self.endpoint_id, self.attempts = app_id, endpoint_id, attempts
        self.filled = 0  # prunable rows loaded so far (x < filled)

    def grow(self, size: int) -> float:
        """Bulk-load prunable rows (and the kept ones that go with them) until ``size`` have
        been loaded; seconds taken."""
        from notifications.models import DeliveryAttempt, Notification

        start, stop = self.filled, size
        if stop <= start:
            return 0.0
        now = timezone.now()
        old = now - timedelta(days=DELIVERED_DAYS_AGO)
        began = time.perf_counter()
        with transaction.atomic():
            _insert_series(Notification, start, stop, self._notification(old, old))
            for number in range(1, self.attempts + 1):
                _insert_series(DeliveryAttempt, start, stop, self._attempt(old, number))
            kept_stop = stop // KEPT_EVERY
            kept_start = start // KEPT_EVERY
            for prefix, state, delivered_at in (
                ("a", "pending", None),
                ("b", "exhausted", None),
                ("c", "delivered", now - timedelta(days=1)),
            ):
                columns = self._notification(old, delivered_at, state=state, prefix=prefix)
                _insert_series(Notification, kept_start, kept_stop, columns)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for model in (Notification, DeliveryAttempt):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        self.filled = stop
        return time.perf_counter() - began

    def _notification(self, created, delivered_at, *, state="delivered", prefix="f") -> dict:
        sql = _sql(connection.vendor)
        delivered = ("NULL", []) if delivered_at is None else ("%s", [_dt(delivered_at)])
        return {
            "id": (_uuid(prefix), []),
            "sender_key": ("%s", [self.app_id]),
            "subject": (sql["text"](f"PRUNE{prefix}"), []),
            "event_type": ("'recharge.succeeded'", []),
            "target_url": ("%s", [TARGET_URL]),
            "endpoint": ("%s", [self.endpoint_id]),
            "body": ("%s", [NOTIFICATION_BODY]),
            "state": ("%s", [state]),
            "attempt_count": ("1", []),
            "next_attempt_at": ("%s", [_dt(created)]),
            "created_at": ("%s", [_dt(created)]),
            "delivered_at": delivered,
            "last_status_code": ("204", []),
            "last_error": ("''", []),
        }

    def _attempt(self, started, number: int) -> dict:
        last = number == self.attempts
        return {
            "notification": (_uuid("f"), []),
            "number": (str(number), []),
            "started_at": ("%s", [_dt(started)]),
            "duration_ms": ("12", []),
            "status_code": ("204" if last else "503", []),
            "response_excerpt": ("''", []),
            "error": ("''", []),
            "request_headers": (_sql(connection.vendor)["json"], [REQUEST_HEADERS]),
            "succeeded": ("%s", [last]),
        }


def counts() -> dict:
    """Rows of this scenario by kind: prunable notifications left, kept ones, attempts."""
    from notifications.models import DeliveryAttempt, Notification

    ours = Notification.objects.filter(subject__startswith="PRUNE")
    return {
        "prunable": ours.filter(subject__startswith="PRUNEf").count(),
        "kept": ours.exclude(subject__startswith="PRUNEf").count(),
        "attempts": DeliveryAttempt.objects.filter(
            notification__subject__startswith="PRUNEf"
        ).count(),
    }


def one_batch(batch_size: int) -> tuple[float, dict]:
    """Milliseconds of one prune batch (the task body), and what it returned."""
    from notifications.services import notifications_prune

    began = time.perf_counter()
    outcome = notifications_prune(now=timezone.now(), batch_size=batch_size, budget_seconds=0)
    return (time.perf_counter() - began) * 1000, outcome


def explain(batch_size: int) -> dict:
    """The batch's selection query's plan (PostgreSQL EXPLAIN, SQLite EXPLAIN QUERY PLAN),
    and whether it reads the notifications table through an index only."""
    from notifications.models import Notification
    from notifications.selectors import notifications_prunable

    before = timezone.now() - timedelta(days=RETENTION_DAYS)
    query = notifications_prunable(delivered_before=before).values_list("pk", flat=True)
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        list(query[:batch_size])
    sql = captured.captured_queries[-1]["sql"]
    table = Notification._meta.db_table
    if connection.vendor == "postgresql":
        plan = _plan(f"EXPLAIN {sql}")
        full_scan = re.search(rf"Seq Scan on {table}\b", plan)
    else:
        plan = _plan(f"EXPLAIN QUERY PLAN {sql}")
        full_scan = re.search(rf"\bSCAN {table}\b", plan)
    return {"plan": plan, "uses_index": not full_scan}


def measure(table: Table, *, batch_size: int, batches: int) -> dict:
    """Median milliseconds per batch over ``batches`` batches at the current size."""
    rows = counts()
    durations, outcomes = [], []
    for _ in range(batches):
        duration, outcome = one_batch(batch_size)
        durations.append(duration)
        outcomes.append(outcome)
    return {
        "rows": rows,
        "batch_ms": round(statistics.median(durations), 2),
        "batch_ms_all": [round(duration, 2) for duration in durations],
        "deleted": {
            "notifications": sum(outcome["notifications"] for outcome in outcomes),
            "attempts": sum(outcome["attempts"] for outcome in outcomes),
        },
        "plan": explain(batch_size),
    }


def run(
    *,
    app_id: str,
    sizes: list[int],
    batch_size: int,
    batches: int,
    attempts: int = 2,
    progress=None,
) -> dict:
    """Grow the table through ``sizes`` prunable notifications and time ``batches`` prune
    batches of ``batch_size`` at each; the ratio of the largest size's median to the
    smallest's, and whether every row that must stay stayed."""
    from notifications.services import endpoint_id_for

    endpoint_id = endpoint_id_for(sender_key=app_id, url=TARGET_URL)
    table = Table(app_id=app_id, endpoint_id=endpoint_id, attempts=attempts)
    steps = []
    with override_settings(NOTIFY_RETENTION=RETENTION_DAYS * DAY):
        for size in sizes:
            if progress:
                progress.set_postfix_str(f"prune: loading {size:,} notifications")
            load_seconds = table.grow(size)
            if progress:
                progress.set_postfix_str(f"prune: batches at {size:,}")
            step = measure(table, batch_size=batch_size, batches=batches)
            step.update(size=size, load_seconds=round(load_seconds, 2))
            steps.append(step)
    kept_loaded = 3 * (sizes[-1] // KEPT_EVERY)
    first, last = steps[0], steps[-1]
    return {
        "vendor": connection.vendor,
        "batch_size": batch_size,
        "batches": batches,
        "attempts": attempts,
        "steps": steps,
        "ratio": round(last["batch_ms"] / first["batch_ms"], 3) if first["batch_ms"] else None,
        "kept_survived": counts()["kept"] == kept_loaded,
        "full_batches": all(
            step["deleted"]["notifications"] == batch_size * batches for step in steps
        ),
        "plans_use_indexes": all(step["plan"]["uses_index"] for step in steps),
    }
