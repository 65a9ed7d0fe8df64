"""The figures of a scenario, read from its database (through this process's Django), its
receiver proxy's own counts and its worker logs; and the reads several scenarios share."""

import math
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID


def fill(outcome, *, proxy, forced: int, merchant=None) -> None:
    """Set ``outcome``'s figures (see ``chaos.harness``) after settling: from the audit (of
    ``merchant``'s orders, accounts', when the run has others), the rows, and ``proxy`` (a
    ``devstack.proxy.FaultProxy``): every refusal it injected is an attempt the minimum
    includes, as are the ``forced`` failures of the scenario's own fault."""
    from audit.checks import audit
    from notifications.models import DeliveryAttempt, Notification
    from payments.models import RechargeOrder

    report = audit(merchant=merchant)
    lost = {u.tx_no for u in report.uncredited} | {n.tx_no for n in report.not_closed}
    outcome.lost = len(lost)
    outcome.credited_twice = len(report.double_credits) + sum(
        1 for totals in report.accounts if totals.balance > totals.credited
    )
    outcome.orders = RechargeOrder.objects.count()
    outcome.notifications = Notification.objects.count()
    outcome.delivered = Notification.objects.filter(state=Notification.State.DELIVERED).count()
    outcome.attempts = DeliveryAttempt.objects.count()
    outcome.injected = dict(proxy.injected())
    outcome.minimum = outcome.notifications + outcome.injected.get("refused_first", 0) + forced
    outcome.problems = report.problems()


def receiver_counts(proxy, *, exact: bool) -> tuple[str, bool, str]:
    """The check that no claimed attempt was sent twice, as (name, ok, detail): per
    webhook-id, the requests ``proxy`` saw are at most the attempt rows. A request beyond
    the rows is an HTTP attempt nobody claimed. With ``exact``, also at least the rows less
    those that timed out or were abandoned: every other attempt reached the receiver. Those
    may not have (a worker frozen with SIGSTOP spends its attempts' deadlines without
    sending; one SIGKILLed may die before it sends)."""
    seen = proxy.requests_per_webhook_id()
    rows = attempts_per_webhook_id()
    extra = {wid: (n, rows.get(wid, 0)) for wid, n in seen.items() if n > rows.get(wid, 0)}
    name = "receiver saw each claimed attempt at most once"
    if exact:
        unsent = attempts_per_webhook_id(error__startswith="timeout after")
        unsent += attempts_per_webhook_id(error__startswith="abandoned")
        extra.update(
            {wid: (seen[wid], n) for wid, n in rows.items() if seen[wid] < n - unsent[wid]}
        )
        name = "receiver saw each claimed attempt once, a timed-out or abandoned one at most once"
    detail = f"{sum(seen.values())} requests for {sum(rows.values())} attempt rows"
    if extra:
        shown = dict(list(extra.items())[:5])
        detail += f"; differing (seen, rows): {shown}; their attempts: {attempt_outcomes(shown)}"
    return name, not extra, detail


def attempt_outcomes(webhook_ids) -> dict:
    """``{webhook-id: [(number, status or None, error), ...]}``: what each attempt recorded."""
    from notifications.models import DeliveryAttempt

    ids = [UUID(webhook_id.removeprefix("msg_")) for webhook_id in webhook_ids]
    outcomes: dict = {}
    attempts = DeliveryAttempt.objects.filter(notification_id__in=ids).order_by("number")
    for pk, number, status, error in attempts.values_list(
        "notification_id", "number", "status_code", "error"
    ):
        outcomes.setdefault(f"msg_{pk.hex}", []).append((number, status, error))
    return outcomes


def attempts_per_webhook_id(**lookups) -> Counter:
    """``{webhook-id: attempt rows}`` over every notification; ``lookups`` on
    DeliveryAttempt's fields count only those attempts."""
    from django.db.models import Count, Q

    from notifications.models import Notification

    only = Q(**{f"attempts__{name}": value for name, value in lookups.items()})
    rows = Notification.objects.annotate(n=Count("attempts", filter=only or None)).only("id")
    return Counter({row.webhook_id: row.n for row in rows if row.n})


def sending_now(*, claimed_after: float = 0.0) -> int:
    """Attempts claimed (after ``claimed_after``, a ``time.time()``) and not yet finished."""
    from notifications.models import Notification

    return Notification.objects.filter(
        state=Notification.State.SENDING, claimed_at__gt=at(claimed_after)
    ).count()


def deliver_messages(log_dir: Path) -> int:
    """``notifications.deliver`` messages the scenario's workers received, repeats counted."""
    return sum(len(received_task_ids(path)) for path in sorted(log_dir.glob("worker*.log")))


def redeliveries(log_dir: Path) -> int:
    """``notifications.deliver`` messages the scenario's workers received again, by task id:
    the broker's redeliveries (a copy published by hand has an id of its own)."""
    received = Counter(
        task_id
        for path in sorted(log_dir.glob("worker*.log"))
        for task_id in received_task_ids(path)
    )
    return sum(n - 1 for n in received.values() if n > 1)


def received_task_ids(log_path: Path, task: str = "notifications.deliver") -> list[str]:
    """Task ids of every ``task`` message a worker log says was received (with repeats)."""
    pattern = re.compile(rf"Task {re.escape(task)}\[([0-9a-f-]+)\] received")
    try:
        return pattern.findall(log_path.read_text(errors="replace"))
    except OSError:
        return []


def percentile(values: list, share: float) -> float:
    """The value below which ``share`` (0 to 1) of the sorted ``values`` fall (nearest rank;
    0 for none)."""
    if not values:
        return 0.0
    return values[min(len(values), max(1, math.ceil(share * len(values)))) - 1]


def at(timestamp: float) -> datetime:
    """A ``time.time()`` as an aware UTC datetime, for filters on the rows' times."""
    return datetime.fromtimestamp(timestamp, UTC)
