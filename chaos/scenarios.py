"""The fault scenarios, and the figures each one reports.

Every scenario runs in a ``Run``: a fresh database (cloned from the template), its own Redis,
the Procfile's processes and a ``FaultProxy`` in front of accounts' notify endpoint (the
notify_url every order carries). It places orders through the real pages, injects its fault,
records when the fault ended, then waits until the system has *settled*: no order pending at
payments, no notification pending or being sent, and ``audit()`` clean. The figures:

- *lost*: orders final at payments whose result never reached accounts (recharge still open,
  or succeeded and not credited), counted from the audit after settling (or the deadline);
- *credited twice*: ``tx_no``s with more than one ledger row, plus accounts whose balance
  exceeds their ledger;
- *attempts beyond the minimum*: ``DeliveryAttempt`` rows minus the minimum the fault forced
  (one per notification, plus every attempt the injected fault made fail);
- *time to settle*: from the end of fault injection to the first moment the audit is clean.

Reconciliation is off (``ACCOUNTS_RECONCILE_AFTER`` one day) except in scenarios 6 and 8,
so everywhere else each result must arrive by notification alone.
"""

import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from .proxy import FaultProxy
from .shoppers import drive, plan_orders
from .stack import CHAOS_VAR, ROOT, ChaosDatabase, ChaosStack

# The compressed schedule: 1 s, 2 s, 4 s, then 8 s (19 retries, about 140 s in all). Steps up
# to NOTIFY_COUNTDOWN_CAP (3 s) travel as Celery countdowns, longer ones wait in the database
# for the sweeper: both paths are exercised.
LADDER = (1, 2, 4) + (8,) * 16
JITTER = 0.1

BASE_ENV = {
    "DJANGO_SETTINGS_MODULE": "chaos.settings",
    "DJANGO_DEBUG": "0",
    "DB_CONN_MAX_AGE": "0",
    "NOTIFY_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",  # every receiver here is on loopback
    "NOTIFY_RETRY_SCHEDULE": ",".join(f"{step}s" for step in LADDER),
    "NOTIFY_RETRY_JITTER": str(JITTER),
    "NOTIFY_COUNTDOWN_CAP": "3",
    "NOTIFY_SWEEP_INTERVAL": "1",
    "NOTIFY_REQUEUE_AFTER": "3",
    "NOTIFY_CLAIM_TIMEOUT": "10",
    "NOTIFY_CONNECT_TIMEOUT": "1",
    "NOTIFY_READ_TIMEOUT": "3",
    "ACCOUNTS_RECONCILE_AFTER": "86400",
    "ACCOUNTS_RECONCILE_INTERVAL": "1",
    "ACCOUNTS_API_TIMEOUT": "5",
    "PAYMENTS_EXPIRE_INTERVAL": "1",
    "PAYMENTS_ORDER_TTL": "3600",
    # One client address places every order and receives every notification here: what
    # would be many merchants' traffic must not be throttled into failed attempts.
    "PAYMENTS_CREATE_THROTTLE_RATE": "1000000/min",
    "ACCOUNTS_NOTIFY_THROTTLE_RATE": "1000000/min",
    "WORKER_CONCURRENCY": "4",
    "LOG_LEVEL": "INFO",
}


@dataclass(frozen=True)
class Sizes:
    """How big a run is: ``FULL`` for ``make chaos``, ``SMALL`` inside ``make test``."""

    orders: int = 500
    burst_orders: int = 100  # scenario 7: notifications each POSTed ``burst`` times at once
    burst: int = 50
    kills: int = 5
    outage: float = 20.0  # seconds Redis, or the payments API, is down
    phase: float = 8.0  # seconds of each receiver fault (refused, slow, 500)
    oncommit_batch: int = 50  # orders per process killed at commit
    reconcile_span: float = 10.0  # scenario 8: seconds reconciling everything should take
    settle_timeout: float = 300.0
    threads: int = 4
    users: int = 20


FULL = Sizes()
SMALL = Sizes(
    orders=30,
    burst_orders=4,
    kills=2,
    outage=6.0,
    phase=3.0,
    oncommit_batch=10,
    reconcile_span=6.0,
    settle_timeout=150.0,
    threads=3,
    users=6,
)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Outcome:
    """What a scenario reports; ``ok`` is its verdict."""

    key: str
    title: str
    orders: int = 0
    notifications: int = 0
    delivered: int = 0
    lost: int = 0
    credited_twice: int = 0
    attempts: int = 0
    minimum: int = 0
    settle_seconds: float | None = None
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    error: str | None = None
    log_dir: str = ""

    @property
    def beyond(self) -> int:
        return self.attempts - self.minimum

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.settle_seconds is not None
            and self.lost == 0
            and self.credited_twice == 0
            and not self.problems
            and all(check.ok for check in self.checks)
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "beyond": self.beyond, "ok": self.ok}


# --- The run of one scenario ----------------------------------------------------------------


class Run:
    """One scenario's world: database, Redis, processes, the receiver proxy, the clock."""

    def __init__(self, *, key: str, title: str, sizes: Sizes, database: ChaosDatabase, env: dict):
        self.key = key
        self.sizes = sizes
        self.database = database
        self.log_dir = CHAOS_VAR / "logs" / key
        self.outcome = Outcome(key=key, title=title, log_dir=str(self.log_dir))
        self.env = {**BASE_ENV, **env}
        self.receiver = FaultProxy()
        stack_env = {
            **self.env,
            "DATABASE_URL": database.url,
            "ACCOUNTS_PUBLIC_URL": self.receiver.url,  # so every notify_url is the proxy's
        }
        self.stack = ChaosStack(env=stack_env, log_dir=self.log_dir)
        self.receiver.upstream = self.stack.web_url
        self.fault_ended: float | None = None

    def __enter__(self) -> "Run":
        from django.db import connections

        if self.log_dir.exists():
            for old in self.log_dir.iterdir():
                old.unlink()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        connections.close_all()
        self.database.recreate()
        self.stack.start_redis()
        self.receiver.start()
        return self

    def __exit__(self, *exc) -> None:
        from django.db import connections

        try:
            self.stack.close()
        finally:
            self.receiver.close()
            connections.close_all()

    # --- Steps -----------------------------------------------------------------------------

    def say(self, message: str) -> None:
        print(f"[{self.key}] {message}", file=sys.stderr, flush=True)

    def start(self, *names: str) -> None:
        """Start Procfile processes together, then wait until each is ready (gunicorns
        accept connections, a worker answers a ping)."""
        began = time.monotonic()
        for name in names:
            self.stack.start(name, wait=False)
        for name in names:
            self.stack.wait_ready(name)
        self.say(f"started {', '.join(names)} in {time.monotonic() - began:.1f}s")

    def drive(self, orders: list, *, background: bool = True):
        return drive(
            base_url=self.stack.web_url,
            orders=orders,
            users=self.sizes.users,
            threads=self.sizes.threads,
            background=background,
        )

    def end_fault(self, at: float | None = None) -> None:
        self.fault_ended = at or time.time()

    def settle(self) -> None:
        """Wait until settled (see the module docstring) or the deadline; sets
        ``settle_seconds`` (None when it never settled)."""
        from audit.checks import audit
        from notifications.models import Notification
        from payments.models import RechargeOrder

        assert self.fault_ended is not None, "end_fault() first"
        deadline = time.monotonic() + self.sizes.settle_timeout
        in_flight = [Notification.State.PENDING, Notification.State.SENDING]
        while True:
            if (
                not RechargeOrder.objects.filter(status=RechargeOrder.Status.PENDING).exists()
                and not Notification.objects.filter(state__in=in_flight).exists()
                and audit().clean
            ):
                self.outcome.settle_seconds = max(0.0, time.time() - self.fault_ended)
                self.say(f"settled {self.outcome.settle_seconds:.1f}s after the fault ended")
                return
            if time.monotonic() > deadline:
                self.say(f"NOT settled within {self.sizes.settle_timeout:.0f}s")
                return
            time.sleep(0.5)

    def figures(self, *, forced: int = 0, exact_receiver: bool = False) -> None:
        """Fill in the table's figures from the database and the audit; ``forced`` is the
        failed attempts the scenario's own fault made (beyond accounts' injected 503s)."""
        from audit.checks import audit
        from notifications.models import DeliveryAttempt, Notification
        from payments.models import RechargeOrder

        report = audit()
        outcome = self.outcome
        lost = {u.tx_no for u in report.uncredited} | {n.tx_no for n in report.not_closed}
        outcome.lost = len(lost)
        outcome.credited_twice = len(report.double_credits) + sum(
            1 for totals in report.accounts if totals.balance > totals.credited
        )
        outcome.orders = RechargeOrder.objects.count()
        outcome.notifications = Notification.objects.count()
        outcome.delivered = Notification.objects.filter(state=Notification.State.DELIVERED).count()
        outcome.attempts = DeliveryAttempt.objects.count()
        outcome.minimum = outcome.notifications + injected_refusals() + forced
        outcome.problems = report.problems()
        self.check_receiver_counts(exact=exact_receiver)
        messages = sum(
            len(received_task_ids(path)) for path in sorted(self.log_dir.glob("worker*.log"))
        )
        self.note(
            f"{messages} deliver messages consumed for {outcome.attempts} attempts (the rest "
            "found nothing to claim: duplicates, redeliveries, sweeper re-sends)"
        )

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.outcome.checks.append(Check(name, bool(ok), detail))
        if not ok:
            self.say(f"CHECK FAILED: {name} {detail}")

    def note(self, text: str) -> None:
        self.outcome.notes.append(text)

    def check_receiver_counts(self, *, exact: bool = False) -> None:
        """No claimed attempt was sent twice: per webhook-id, the requests the receiver saw
        are at most the attempt rows (exactly as many when ``exact``: every attempt reached
        it). A request beyond the rows is an HTTP attempt nobody claimed."""
        seen = self.receiver.requests_per_webhook_id()
        rows = attempts_per_webhook_id()
        extra = {wid: (n, rows.get(wid, 0)) for wid, n in seen.items() if n > rows.get(wid, 0)}
        name = "receiver saw each claimed attempt at most once"
        if exact:
            missing = {wid: (seen.get(wid, 0), n) for wid, n in rows.items() if seen[wid] != n}
            extra.update(missing)
            name = "receiver saw each claimed attempt exactly once"
        self.check(
            name,
            not extra,
            f"{sum(seen.values())} requests for {sum(rows.values())} attempt rows"
            + (f"; differing (seen, rows): {dict(list(extra.items())[:5])}" if extra else ""),
        )

    def check_drive(self, state) -> None:
        self.check(
            "every page answered",
            not state.errors,
            f"{len(state.errors)} errors: {state.errors[:3]}" if state.errors else "",
        )


# --- Database reads shared by the scenarios -------------------------------------------------


def injected_refusals() -> int:
    """Attempts accounts answered 503 by fault injection (``ACCOUNTS_FAULT_REFUSE_FIRST``)."""
    from notifications.models import DeliveryAttempt

    return DeliveryAttempt.objects.filter(
        succeeded=False, response_excerpt__contains="fault injection"
    ).count()


def attempts_per_webhook_id() -> Counter:
    from django.db.models import Count

    from notifications.models import DeliveryAttempt

    rows = DeliveryAttempt.objects.values("notification_id").annotate(n=Count("id"))
    return Counter({f"msg_{row['notification_id'].hex}": row["n"] for row in rows})


def sending_now(*, claimed_after: float = 0.0) -> int:
    """Attempts claimed (after ``claimed_after``, a ``time.time()``) and not yet finished."""
    from notifications.models import Notification

    return Notification.objects.filter(
        state=Notification.State.SENDING, claimed_at__gt=_at(claimed_after)
    ).count()


def wait_until(predicate, *, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def received_task_ids(log_path, task: str = "notifications.deliver") -> list[str]:
    """Task ids of every ``task`` message a worker log says was received (with repeats)."""
    pattern = re.compile(rf"Task {re.escape(task)}\[([0-9a-f-]+)\] received")
    try:
        return pattern.findall(log_path.read_text(errors="replace"))
    except OSError:
        return []


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


# --- The scenarios --------------------------------------------------------------------------


def worker_killed(run: Run) -> None:
    """1. SIGKILL the worker's whole process group repeatedly while deliveries are in flight,
    then start a new one. The killed attempts stay claimed until the sweeper releases them
    (``NOTIFY_CLAIM_TIMEOUT``); messages the worker held are gone with it."""
    from notifications.models import DeliveryAttempt

    sizes = run.sizes
    run.receiver.latency = 0.1  # deliveries take a moment: several are in flight at a kill
    run.start("web", "payments", "worker", "beat")
    state = run.drive(plan_orders(sizes.orders, seed=1))
    in_flight = []
    last_kill = 0.0
    for kill in range(sizes.kills):
        share = (kill + 1) / (sizes.kills + 1)
        wait_until(lambda share=share: state.progress() >= share, timeout=120)
        since = last_kill  # claims left by the previous kill are not in flight any more
        wait_until(
            lambda since=since: sending_now(claimed_after=since) > 0, timeout=10, interval=0.02
        )
        in_flight.append(sending_now(claimed_after=since))
        run.stack.kill("worker")
        last_kill = time.time()
        run.say(f"SIGKILLed the worker group with {in_flight[-1]} attempt(s) in flight")
        if kill < sizes.kills - 1:
            run.start("worker")
    state.wait(timeout=600)
    run.end_fault(max(last_kill, state.finished))
    run.start("worker")  # the new one
    run.settle()
    run.figures()
    run.check_drive(state)
    abandoned = DeliveryAttempt.objects.filter(error__startswith="abandoned").count()
    run.check(
        "the only extra attempts are the ones the kills abandoned",
        run.outcome.beyond == abandoned,
        f"{run.outcome.beyond} beyond the minimum, {abandoned} abandoned",
    )
    run.check("the kills hit deliveries in flight", sum(in_flight) > 0, f"{in_flight}")
    run.note(
        f"{sizes.kills} SIGKILLs of the worker group with {'+'.join(map(str, in_flight))} "
        f"attempts in flight; {abandoned} abandoned attempts released by the sweeper and "
        "made again"
    )


def redis_flushed(run: Run) -> None:
    """2a. FLUSHALL mid-run, and again right after the last order: queued messages,
    countdown retries waiting in Redis and unacknowledged messages are all lost."""
    sizes = run.sizes
    run.start("web", "payments", "worker", "beat")
    state = run.drive(plan_orders(sizes.orders, seed=2))
    wait_until(lambda: state.progress() >= 0.5, timeout=300)
    flushes = [run.stack.flushall()]
    run.say(f"FLUSHALL at 50%: lost {flushes[-1]}")
    state.wait(timeout=600)
    flushes.append(run.stack.flushall())
    run.say(f"FLUSHALL after the last order: lost {flushes[-1]}")
    run.end_fault()
    run.settle()
    run.figures()
    run.check_drive(state)
    lost = sum(f["queued"] + f["unacked"] for f in flushes)
    run.note(
        "FLUSHALL at 50% and 100% of orders: "
        + ", ".join(f"{f['queued']} queued + {f['unacked']} unacked" for f in flushes)
        + f" messages lost ({lost}); refused first deliveries (503) put countdowns in Redis"
    )


def redis_restarted(run: Run) -> None:
    """2b. Stop Redis (SIGKILL, no persistence), keep placing orders, start it again empty."""
    from payments.models import RechargeOrder

    sizes = run.sizes
    run.start("web", "payments", "worker", "beat")
    state = run.drive(plan_orders(sizes.orders, seed=3))
    wait_until(lambda: state.progress() >= 0.3, timeout=300)
    run.stack.stop_redis()
    down = time.time()
    run.say(f"Redis stopped; orders keep coming for {sizes.outage:.0f}s")
    time.sleep(sizes.outage)
    run.stack.start_redis()
    up = time.time()
    run.say("Redis started again, empty")
    state.wait(timeout=600)
    run.end_fault(max(up, state.finished))
    run.settle()
    run.figures()
    run.check_drive(state)
    during = RechargeOrder.objects.filter(
        finished_at__gte=_at(down), finished_at__lte=_at(up)
    ).count()
    run.check("orders were paid while Redis was down", during > 0, f"{during}")
    run.note(
        f"Redis down {up - down:.1f}s and back empty; {during} orders paid meanwhile (their "
        "enqueue failed; the outbox kept them)"
    )


def died_at_commit(run: Run) -> None:
    """3. The process dies between the commit and the enqueue: orders are paid by processes
    that SIGKILL themselves in an on-commit hook registered before the enqueue hooks."""
    from notifications.models import Notification

    sizes = run.sizes
    run.start("web", "payments", "worker", "beat")
    orders = plan_orders(sizes.orders, seed=4)
    state = run.drive([replace(order, action=None) for order in orders], background=False)
    finishing = [
        (state.tx_nos[order.number], order.action)
        for order in orders
        if order.number in state.tx_nos
    ]
    deaths, untouched = [], 0
    for start in range(0, len(finishing), sizes.oncommit_batch):
        batch = finishing[start : start + sizes.oncommit_batch]
        died = subprocess.run(
            [sys.executable, "-m", "chaos.oncommit"],
            input=json.dumps(batch).encode(),
            env=run.stack.env,
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        deaths.append(died.returncode)
        if died.returncode != -9:
            run.say(f"payer exited {died.returncode}: {died.stderr.decode()[-500:]}")
        untouched += Notification.objects.filter(
            subject__in=[tx_no for tx_no, _ in batch], attempt_count=0
        ).count()
    run.say(f"{len(deaths)} payer processes SIGKILLed at commit")
    run.end_fault()
    run.settle()
    run.figures()
    run.check_drive(state)
    run.check(
        "every payer died in the on-commit window",
        deaths and all(code == -9 for code in deaths),
        f"exit statuses {sorted(set(deaths))}",
    )
    run.check(
        "no notification was attempted before the sweeper found it",
        untouched == len(finishing) == run.outcome.notifications,
        f"{untouched} of {len(finishing)} untouched right after their payer died",
    )
    requeue_after = float(run.env["NOTIFY_REQUEUE_AFTER"])
    early = _first_attempts_earlier_than(requeue_after)
    run.check(
        f"every first attempt came from the sweeper (>= {requeue_after:g}s after commit)",
        early == 0,
        f"{early} earlier",
    )
    run.note(
        f"{len(deaths)} payer processes SIGKILLed between commit and enqueue, "
        f"{len(finishing)} orders finished with nothing sent to the broker; all delivered by "
        "the sweeper"
    )


def _first_attempts_earlier_than(seconds: float) -> int:
    from notifications.models import DeliveryAttempt

    return sum(
        1
        for started, created in DeliveryAttempt.objects.filter(number=1).values_list(
            "started_at", "notification__created_at"
        )
        if (started - created).total_seconds() < seconds
    )


def receiver_faults(run: Run) -> None:
    """4. The receiver refuses connections, then answers past the read timeout, then answers
    500, for a stretch of the compressed schedule each, then recovers."""
    from notifications.models import DeliveryAttempt

    sizes = run.sizes
    read_timeout = float(run.env["NOTIFY_READ_TIMEOUT"])
    run.receiver.slow_seconds = read_timeout + 1.0
    run.receiver.set_mode("refuse")
    began = time.time()
    run.start("web", "payments", "worker", "beat")
    state = run.drive(plan_orders(sizes.orders, seed=5), background=False)
    time.sleep(sizes.phase)
    phases = [("refused", began, time.time())]
    for mode, label in (("slow", "slow"), ("error", "500")):
        run.receiver.set_mode(mode)
        start = time.time()
        time.sleep(sizes.phase)
        phases.append((label, start, time.time()))
    run.receiver.set_mode("forward")
    run.end_fault()
    run.say("receiver recovered")
    run.settle()
    fault_span = (_at(began), _at(phases[-1][2] + read_timeout + 1))
    forced = DeliveryAttempt.objects.filter(succeeded=False, started_at__range=fault_span).count()
    run.figures(forced=forced)
    run.check_drive(state)
    by_phase = Counter()
    for attempt in DeliveryAttempt.objects.filter(succeeded=False).only("started_at"):
        ts = attempt.started_at.timestamp()
        label = next((name for name, a, b in phases if a <= ts < b), "after")
        by_phase[label] += 1
    early, lateness, gaps = _schedule_kept()
    run.check(
        "no retry earlier than its step of the schedule",
        early == 0,
        f"{gaps} gaps checked, {early} early",
    )
    late = sorted(lateness)
    run.note(
        "failed attempts by phase: "
        + ", ".join(f"{name} {by_phase[name]}" for name, _, _ in phases)
        + f"; retry gaps vs schedule: {gaps} checked, none early, lateness median "
        f"{late[len(late) // 2] if late else 0:.1f}s, max {late[-1] if late else 0:.1f}s "
        "(a saturated worker runs late, never early)"
    )


def _schedule_kept() -> tuple[int, list, int]:
    """(early, lateness in seconds, gaps checked) over every pair of consecutive attempts:
    attempt n+1 must start no sooner than attempt n's end plus step n less the jitter."""
    from notifications.models import DeliveryAttempt

    attempts: dict = {}
    for row in DeliveryAttempt.objects.values(
        "notification_id", "number", "started_at", "duration_ms"
    ).order_by("notification_id", "number"):
        attempts.setdefault(row["notification_id"], []).append(row)
    early, lateness, gaps = 0, [], 0
    for rows in attempts.values():
        for before, after in zip(rows, rows[1:], strict=False):
            step = LADDER[before["number"] - 1]
            ended = before["started_at"].timestamp() + before["duration_ms"] / 1000
            gap = after["started_at"].timestamp() - ended
            gaps += 1
            if gap < step * (1 - JITTER) - 0.05:
                early += 1
            lateness.append(max(0.0, gap - step * (1 + JITTER)))
    return early, lateness, gaps


def redelivered(run: Run) -> None:
    """5. Tasks redelivered by the broker (a 2 s visibility timeout: slow deliveries and
    countdowns outlive it, kombu issue 337) and duplicated by hand (``send_task``): the
    receiver must see each claimed attempt exactly once."""
    from notifications.models import Notification

    sizes = run.sizes
    # Some deliveries run past the 2 s visibility timeout (about 30, at most a fifth).
    run.receiver.slow_share = min(0.2, 30 / max(sizes.orders, 1))
    run.receiver.slow_seconds = 3.0
    run.start("web", "payments", "worker", "beat")
    state = run.drive(plan_orders(sizes.orders, seed=6))
    duplicated: Counter = Counter()
    stop = threading.Event()

    def duplicate_in_flight() -> None:
        while not stop.is_set():
            ids = Notification.objects.exclude(pk__in=list(duplicated)).values_list("pk", flat=True)
            for notification_id in ids:
                run.stack.send_deliver(notification_id)
                duplicated[notification_id] += 1
            time.sleep(0.3)

    duplicator = threading.Thread(target=duplicate_in_flight, daemon=True)
    duplicator.start()
    state.wait(timeout=600)
    time.sleep(1.0)
    stop.set()
    duplicator.join()
    for notification_id in Notification.objects.values_list("pk", flat=True):
        run.stack.send_deliver(notification_id)  # and once more, most of them delivered
        duplicated[notification_id] += 1
    run.end_fault()
    run.settle()
    run.figures(exact_receiver=True)
    run.check_drive(state)
    received = received_task_ids(run.stack.log_dir / "worker.log")
    redelivered_ids = sum(n - 1 for n in Counter(received).values() if n > 1)
    run.check(
        "the broker redelivered messages (the fault happened)",
        redelivered_ids > 0,
        f"{redelivered_ids} redeliveries",
    )
    duplicates = sum(duplicated.values())
    run.note(
        f"{redelivered_ids} messages redelivered by the broker (visibility 2 s) and "
        f"{duplicates} sent by hand; whichever copy came first claimed the attempt, the "
        "others found nothing to do: no attempt went out twice"
    )


def two_beats(run: Run) -> None:
    """6. Two beat processes for the whole scenario: every sweep, expiry and reconciliation
    tick is sent twice. Retries all wait for the sweeper (countdown cap 0.5 s), a share of
    first deliveries is refused, a share of notifications dropped (reconciliation closes
    those) and a share of orders left unpaid (expiry fails them)."""
    from accounts.models import LedgerEntry, Recharge
    from payments.models import RechargeOrder

    sizes = run.sizes
    run.start("web", "payments", "worker", "beat")
    run.stack.start("beat", key="beat2")
    state = run.drive(plan_orders(sizes.orders, seed=7, unpaid=0.1))
    state.wait(timeout=600)
    run.end_fault()
    run.settle()
    run.figures()
    run.check_drive(state)
    ticks = {
        key: (run.stack.log_dir / f"{key}.log")
        .read_text(errors="replace")
        .count("Sending due task")
        for key in ("beat", "beat2")
    }
    run.check("both beats sent every tick", all(ticks.values()), f"{ticks}")
    sweeps = len(received_task_ids(run.stack.log_dir / "worker.log", "notifications.sweep"))
    reconciled = Recharge.objects.filter(closed_by=LedgerEntry.Source.RECONCILIATION).count()
    expired = RechargeOrder.objects.filter(failure_reason="expired").count()
    run.note(
        f"beats sent {ticks['beat']} + {ticks['beat2']} ticks; {sweeps} sweeps ran; "
        f"{reconciled} recharges closed by reconciliation, {expired} orders expired"
    )


def concurrent_duplicates(run: Run) -> None:
    """7. The same signed notification POSTed ``burst`` times at once, with two
    reconciliations applying the same result at the same moment, before any worker runs."""
    from django.conf import settings
    from django.db import connection

    from accounts.models import InboundNotification, LedgerEntry, Recharge
    from accounts.payments_client import PaymentsClient
    from accounts.services import recharge_reconcile
    from notifications.models import Notification
    from notifications.signing import signed_headers
    from payments.models import Merchant

    sizes = run.sizes
    run.start("web", "payments")  # no worker, no beat: the notifications wait in the outbox
    state = run.drive(plan_orders(sizes.burst_orders, seed=8), background=False)
    secrets = [Merchant.objects.get().webhook_secret]
    notify_url = f"{run.stack.web_url}/api/accounts/notify/"
    statuses: Counter = Counter()
    applied_per_tx: Counter = Counter()
    reconcile_errors = []

    def post(body: bytes, headers: dict, barrier: threading.Barrier):
        import requests

        with requests.Session() as http:
            http.trust_env = False
            barrier.wait(timeout=60)
            try:
                response = http.post(notify_url, data=body, headers=headers, timeout=60)
            except requests.RequestException as exc:
                return None, type(exc).__name__
            try:
                outcome = response.json().get("outcome", "")
            except ValueError:
                outcome = ""
            return response.status_code, outcome

    def reconcile(tx_no: str, barrier: threading.Barrier):
        client = PaymentsClient(
            base_url=run.stack.payments_url,
            api_key=settings.ACCOUNTS_PAYMENTS_API_KEY,
            timeout=60,
        )
        try:
            recharge = Recharge.objects.select_related("account").get(tx_no=tx_no)
            barrier.wait(timeout=60)
            return recharge_reconcile(recharge=recharge, client=client)
        except Exception as exc:  # recorded, and checked below
            return f"error: {type(exc).__name__}: {exc}"
        finally:
            connection.close()

    notifications = list(Notification.objects.all())
    with (
        ThreadPoolExecutor(max_workers=sizes.burst) as posters,
        ThreadPoolExecutor(max_workers=2) as reconcilers,
    ):
        for notification in notifications:
            body = notification.body.encode()
            headers = signed_headers(
                webhook_id=notification.webhook_id,
                body=notification.body,
                secrets=secrets,
                timestamp=datetime.now(UTC),
            )
            barrier = threading.Barrier(sizes.burst + 2)
            posted = [posters.submit(post, body, headers, barrier) for _ in range(sizes.burst)]
            reconciled = [
                reconcilers.submit(reconcile, notification.subject, barrier) for _ in range(2)
            ]
            for future in posted:
                status, outcome = future.result()
                statuses[status] += 1
                applied_per_tx[notification.subject] += outcome == "applied"
            for future in reconciled:
                result = future.result()
                if result.startswith("error"):
                    reconcile_errors.append(result)
                applied_per_tx[notification.subject] += result == "applied"
    run.end_fault()
    run.say(f"{len(notifications)} bursts of {sizes.burst} POSTs + 2 reconciliations done")
    run.start("worker", "beat")  # the outbox is delivered too: duplicates, acknowledged
    run.settle()
    run.figures()
    run.check_drive(state)
    non_2xx = {s: n for s, n in statuses.items() if s is None or not 200 <= s < 300}
    run.check(
        "every response to the concurrent POSTs was 2xx",
        not non_2xx,
        f"{sum(statuses.values())} responses; non-2xx: {non_2xx}",
    )
    server_errors = sum(n for s, n in statuses.items() if s is None or s >= 500)
    run.check("no 5xx and no dropped connection", server_errors == 0, f"{server_errors}")
    run.check("no reconciliation failed", not reconcile_errors, f"{reconcile_errors[:3]}")
    wrong = {tx: n for tx, n in applied_per_tx.items() if n != 1}
    run.check(
        "each result applied exactly once (POSTs and reconciliations together)",
        not wrong and len(applied_per_tx) == len(notifications),
        f"{dict(list(wrong.items())[:5])}",
    )
    entries = Counter(LedgerEntry.objects.values_list("tx_no", flat=True))
    run.check(
        "one ledger entry per succeeded order",
        all(n == 1 for n in entries.values()),
        f"{len(entries)} entries",
    )
    deliveries = sum(InboundNotification.objects.values_list("deliveries", flat=True))
    run.note(
        f"{len(notifications)} notifications x {sizes.burst} concurrent POSTs + 2 concurrent "
        f"reconciliations ({run.database.vendor}): {sum(statuses.values())} responses, "
        f"statuses {dict(statuses)}; {deliveries} deliveries logged; each applied once"
    )


def reconciliation_interrupted(run: Run) -> None:
    """8. Every notification is acknowledged and dropped, so only reconciliation can close
    the recharges. Mid-reconciliation the accounts side (web and worker) is SIGKILLed and
    restarted; later the payments API becomes unreachable for a while, then returns."""
    from accounts.models import LedgerEntry, Recharge

    sizes = run.sizes
    payments_proxy = FaultProxy(upstream=run.stack.payments_url).start()
    run.stack.env["ACCOUNTS_PAYMENTS_API_URL"] = payments_proxy.url
    try:
        run.start("web", "payments", "worker")
        state = run.drive(plan_orders(sizes.orders, seed=9), background=False)
        total = len(state.tx_nos)

        def reconciled() -> int:
            return Recharge.objects.filter(closed_by=LedgerEntry.Source.RECONCILIATION).count()

        # Each query takes a while, so that reconciling everything takes some seconds and
        # the faults land in the middle of it.
        concurrency = int(run.env["WORKER_CONCURRENCY"])
        payments_proxy.latency = max(0.05, sizes.reconcile_span * concurrency / max(total, 1))
        run.start("beat")
        run.say("reconciliation started")
        wait_until(lambda: reconciled() >= 0.2 * total, timeout=120, interval=0.05)
        at_restart = reconciled()
        run.stack.kill("worker")
        run.stack.kill("web")
        run.say(f"accounts side (web, worker) SIGKILLed at {at_restart}/{total} reconciled")
        time.sleep(1.0)
        run.start("web", "worker")
        wait_until(lambda: reconciled() >= 0.5 * total, timeout=120, interval=0.05)
        at_outage = reconciled()
        payments_proxy.set_mode("refuse")
        run.stack.kill("payments")
        down = time.time()
        run.say(f"payments API unreachable at {at_outage}/{total} reconciled")
        # Answers already on their way back when the API went are still applied; after
        # that, nothing may close while payments is unreachable.
        grace = payments_proxy.latency + 1.0
        time.sleep(grace)
        at_outage = reconciled()
        time.sleep(max(0.0, sizes.outage - grace))
        at_return = reconciled()
        run.start("payments")
        payments_proxy.set_mode("forward")
        run.end_fault()
        run.say(f"payments API back after {time.time() - down:.1f}s")
        run.settle()
        run.figures()
        run.check_drive(state)
        run.check(
            "the restart came mid-reconciliation",
            0 < at_restart < total,
            f"{at_restart}/{total}",
        )
        run.check("the outage came mid-reconciliation", at_outage < total, f"{at_outage}/{total}")
        run.check(
            "nothing was reconciled while payments was unreachable",
            at_return == at_outage,
            f"{at_outage} -> {at_return}",
        )
        closed = reconciled()
        run.check("every recharge closed by reconciliation", closed == total, f"{closed}/{total}")
        queries = Counter(
            s.path for s in payments_proxy.seen if s.method == "GET" and s.status == 200
        )
        run.note(
            f"accounts restarted at {at_restart}/{total}, payments API down "
            f"{sizes.outage:.0f}s at {at_outage}/{total}; {closed} recharges reconciled with "
            f"{sum(queries.values())} answered queries (max {max(queries.values(), default=0)} "
            "per recharge)"
        )
    finally:
        payments_proxy.close()


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    run: object
    env: dict = field(default_factory=dict)


SCENARIOS = [
    Scenario("1", "worker SIGKILLed (whole group) mid-delivery", worker_killed),
    Scenario(
        "2a",
        "Redis FLUSHALL mid-run and at the end",
        redis_flushed,
        {"ACCOUNTS_FAULT_REFUSE_FIRST": "0.3"},
    ),
    Scenario("2b", "Redis stopped, orders go on, restarted empty", redis_restarted),
    Scenario("3", "process dies between commit and enqueue", died_at_commit),
    Scenario("4", "receiver refuses, stalls, answers 500, recovers", receiver_faults),
    Scenario(
        "5",
        "broker redelivery + hand-made duplicates",
        redelivered,
        {
            "CELERY_VISIBILITY_TIMEOUT": "2",
            "NOTIFY_READ_TIMEOUT": "8",
            "NOTIFY_CLAIM_TIMEOUT": "20",
            "ACCOUNTS_FAULT_REFUSE_FIRST": "0.3",
        },
    ),
    Scenario(
        "6",
        "two beats for the whole run",
        two_beats,
        {
            "ACCOUNTS_FAULT_REFUSE_FIRST": "0.3",
            "ACCOUNTS_FAULT_DROP": "0.1",
            "ACCOUNTS_RECONCILE_AFTER": "6",
            "PAYMENTS_ORDER_TTL": "5",
            "NOTIFY_COUNTDOWN_CAP": "0.5",
        },
    ),
    Scenario("7", "50 concurrent duplicates + reconciliation at once", concurrent_duplicates),
    Scenario(
        "8",
        "accounts restart + payments API down mid-reconciliation",
        reconciliation_interrupted,
        {
            "ACCOUNTS_FAULT_DROP": "1",
            "ACCOUNTS_RECONCILE_AFTER": "2",
            "ACCOUNTS_RECONCILE_BATCH": "25",
            "ACCOUNTS_API_TIMEOUT": "2",
        },
    ),
]
BY_KEY = {scenario.key: scenario for scenario in SCENARIOS}


def run_scenario(scenario: Scenario, *, sizes: Sizes, database: ChaosDatabase) -> Outcome:
    """Run one scenario from a fresh database; never raises (an error is the outcome's)."""
    run = Run(
        key=scenario.key,
        title=scenario.title,
        sizes=sizes,
        database=database,
        env=scenario.env,
    )
    began = time.monotonic()
    try:
        with run:
            scenario.run(run)
    except Exception as exc:  # noqa: BLE001 - reported in the table, with the logs' place
        run.outcome.error = f"{type(exc).__name__}: {exc}"
        run.say(f"ERROR {run.outcome.error}")
    run.say(f"{'ok' if run.outcome.ok else 'FAILED'} in {time.monotonic() - began:.0f}s")
    return run.outcome
