"""What every scenario runs in, and what it reports.

A scenario is a function of a ``ChaosRun``: a ``devstack.run.Run`` (the stack with its own
Redis, its broker too unless ``CELERY_BROKER_URL`` names RabbitMQ; the fault proxy in front
of accounts' notify endpoint, orders through the pages, the settle-until-the-audit-is-clean
wait) on a fresh copy of the migrated template database. It injects its fault, marks when
the fault ended, settles, and reports an ``Outcome``: the table's figures
(``chaos.figures``), its own checks and notes.

The figures:

- *lost*: orders final at payments whose result never reached accounts (recharge still open,
  or succeeded and not credited), counted from the audit after settling (or the deadline);
- *credited twice*: ``tx_no``s with more than one ledger row, plus accounts whose balance
  exceeds their ledger;
- *attempts beyond the minimum*: ``DeliveryAttempt`` rows minus the minimum the faults forced
  (one per notification, plus every refusal the proxy injected, plus the failed attempts the
  scenario's own fault caused);
- *time to settle*: from the end of fault injection to the first moment the audit is clean.

Reconciliation is off (``ACCOUNTS_RECONCILE_AFTER`` one day) except in scenarios 6 and 8,
so everywhere else each result must arrive by notification alone.
"""

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from devstack.database import ClonedDatabase
from devstack.run import Run
from devstack.stack import VAR

from . import figures

CHAOS_VAR = VAR / "chaos"

# The compressed schedule: 1 s, 2 s, 4 s, then 8 s (19 retries, about 140 s in all). A worker
# makes the retries it scheduled itself when they fall due; the sweeper (every second) wakes
# a worker for any other due row. The circuit breaker's waits are compressed alike.
LADDER = (1, 2, 4) + (8,) * 16
JITTER = 0.1

BASE_ENV = {
    "DJANGO_SETTINGS_MODULE": "chaos.settings",
    "DJANGO_DEBUG": "0",
    "DB_CONN_MAX_AGE": "0",
    "NOTIFY_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",  # every receiver here is on loopback
    "NOTIFY_RETRY_SCHEDULE": ",".join(f"{step}s" for step in LADDER),
    "NOTIFY_RETRY_JITTER": str(JITTER),
    "NOTIFY_SWEEP_INTERVAL": "1",
    "NOTIFY_CLAIM_TIMEOUT": "10",
    "NOTIFY_CONNECT_TIMEOUT": "1",
    "NOTIFY_ATTEMPT_DEADLINE": "3",
    "NOTIFY_CIRCUIT_OPEN_FOR": "2",
    "NOTIFY_CIRCUIT_OPEN_MAX": "8",
    "ACCOUNTS_RECONCILE_AFTER": "86400",
    "ACCOUNTS_RECONCILE_INTERVAL": "1",
    "ACCOUNTS_API_TIMEOUT": "5",
    "PAYMENTS_EXPIRE_INTERVAL": "1",
    "PAYMENTS_ORDER_TTL": "3600",
    # One client address places every order and receives every notification here: what
    # would be many merchants' traffic must not be throttled into failed attempts.
    "PAYMENTS_CREATE_THROTTLE_RATE": "1000000/min",
    "ACCOUNTS_NOTIFY_THROTTLE_RATE": "1000000/min",
    # A few users place hundreds of orders through the recharge form, far faster than people
    # do and many left pending: the per-user limits would refuse most of them.
    "ACCOUNTS_RECHARGE_USER_RATE": "1000000/min",
    "ACCOUNTS_RECHARGE_PENDING_MAX": "1000000",
    "WORKER_CONCURRENCY": "4",
    "LOG_LEVEL": "INFO",
    # The figures count beat's "Sending due task" and the workers' "received" lines.
    "LOG_ROUTINE": "1",
}
DRIVE_TIMEOUT = 600  # seconds to place a scenario's orders, whatever the fault


@dataclass(frozen=True)
class Sizes:
    """How big a run is: ``FULL`` for ``make chaos``, ``SMALL`` inside ``make test``."""

    orders: int = 500
    burst_orders: int = 100  # scenario 7: notifications each POSTed ``burst`` times at once
    burst: int = 50
    kills: int = 5
    outage: float = 20.0  # seconds Redis, or the payments API, is down
    noisy_orders: int = 200  # scenario 9: the neighbour's notifications due while it hangs
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
    noisy_orders=40,
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
    # The table's columns, in order (``beyond`` is computed from attempts and minimum)...
    orders: int = 0
    notifications: int = 0
    lost: int = 0
    credited_twice: int = 0
    settle_seconds: float | None = None
    # ...and the details.
    delivered: int = 0
    attempts: int = 0
    minimum: int = 0
    injected: dict = field(default_factory=dict)  # the receiver proxy's own counts, per kind
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None  # why the scenario did not run on this broker
    log_dir: str = ""

    @property
    def beyond(self) -> int:
        return self.attempts - self.minimum

    @property
    def ok(self) -> bool:
        if self.skipped:
            return self.error is None
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


@dataclass(frozen=True)
class Scenario:
    """One fault family's scenario: ``run(chaos_run)`` injects the fault and reports; ``env``
    is its settings on top of ``BASE_ENV``; ``redis_only``, for a fault only Redis as the
    broker has, says why it is skipped on RabbitMQ, and ``rabbitmq_only``, for one only
    RabbitMQ has, why it is skipped on Redis; ``network``: a fault only a network causes,
    run on the simulated cluster (``chaos.cluster``)."""

    key: str
    title: str
    run: Callable[["ChaosRun"], None]
    env: dict = field(default_factory=dict)
    redis_only: str = ""
    rabbitmq_only: str = ""
    network: bool = False  # runs on the simulated cluster (chaos.cluster), not on loopback


class ChaosRun(Run):
    """One scenario's world (see the module docstring) and its Outcome."""

    def __init__(
        self, *, scenario: Scenario, sizes: Sizes, database: ClonedDatabase, **run_options
    ):
        self.sizes = sizes
        self.database = database
        self.env = {**BASE_ENV, **scenario.env}
        log_dir = CHAOS_VAR / "logs" / scenario.key
        super().__init__(
            name=scenario.key,
            settings={
                **self.env,
                "DATABASE_URL": database.url,
                # Of the run's own: on RabbitMQ every scenario, and any other chaos run,
                # shares the one broker (with a private Redis no other run shares anything).
                "DEPLOYMENT_NAMESPACE": f"chaos-{scenario.key}-{secrets.token_hex(4)}",
            },
            log_dir=log_dir,
            users=sizes.users,
            threads=sizes.threads,
            settle_timeout=sizes.settle_timeout,
            **run_options,
        )
        self.outcome = Outcome(key=scenario.key, title=scenario.title, log_dir=str(log_dir))

    def __enter__(self) -> "ChaosRun":
        from django.db import connections

        connections.close_all()
        self.database.recreate()
        super().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        from django.db import connections

        try:
            super().__exit__(*exc)
        finally:
            connections.close_all()

    def settle(self, on_poll=None) -> float | None:
        """As ``Run.settle``, recording ``settle_seconds`` in the outcome."""
        self.outcome.settle_seconds = super().settle(on_poll)
        return self.outcome.settle_seconds

    def figures(
        self, *, forced: int = 0, exact_receiver: bool = False, proxied: bool = True
    ) -> None:
        """Fill in the table's figures (``chaos.figures.fill``); ``forced`` is the failed
        attempts the scenario's own fault caused, beyond the proxy's injected refusals.
        Checks the receiver's counts: at most one request per attempt row (``exact``: one,
        except for an attempt that timed out); not when the notifications bypass the proxy
        (``proxied`` False: published to a queue, scenario 19), which then counts nothing."""
        figures.fill(
            self.outcome, proxy=self.receiver, forced=forced, merchant=self.accounts_merchant
        )
        if proxied:
            name, ok, detail = figures.receiver_counts(self.receiver, exact=exact_receiver)
            self.check(name, ok, detail)
        messages = figures.deliver_messages(self.log_dir)
        self.note(
            f"{messages} deliver messages consumed for {self.outcome.attempts} attempts (the "
            "rest found nothing to claim: duplicates, redeliveries, sweeper re-sends)"
        )

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.outcome.checks.append(Check(name, bool(ok), detail))
        if not ok:
            self.say(f"CHECK FAILED: {name} {detail}")

    def note(self, text: str) -> None:
        self.outcome.notes.append(text)

    def check_drive(self, *states) -> None:
        """Check that the pages answered every order of each drive (``devstack.shoppers``)."""
        errors = [error for state in states for error in state.errors]
        self.check(
            "every page answered",
            not errors,
            f"{len(errors)} errors: {errors[:3]}" if errors else "",
        )


def broker_skip(scenario: Scenario, *, broker_is_redis: bool) -> str | None:
    """Why ``scenario`` does not run on this broker ("skipped on RabbitMQ: ..."), or None."""
    if scenario.redis_only and not broker_is_redis:
        return f"skipped on RabbitMQ: {scenario.redis_only}"
    if scenario.rabbitmq_only and broker_is_redis:
        return f"skipped on Redis: {scenario.rabbitmq_only}"
    return None


def run_scenario(
    scenario: Scenario, *, sizes: Sizes, database: ClonedDatabase, **run_options
) -> Outcome:
    """Run one scenario from a fresh database; never raises (an error is the outcome's). A
    Redis-only scenario on another broker, or a RabbitMQ-only one on Redis, is skipped, its
    reason in the outcome. ``run_options`` go to ``devstack.run.Run`` (a cluster's receiver
    and stack)."""
    run = ChaosRun(scenario=scenario, sizes=sizes, database=database, **run_options)
    run.outcome.skipped = broker_skip(scenario, broker_is_redis=run.stack.broker_is_redis)
    if run.outcome.skipped:
        run.say(run.outcome.skipped)
        return run.outcome
    began = time.monotonic()
    try:
        with run:
            scenario.run(run)
    except Exception as exc:  # noqa: BLE001 - reported in the table, with the logs' place
        run.outcome.error = f"{type(exc).__name__}: {exc}"
        run.say(f"ERROR {run.outcome.error}")
    run.say(f"{'ok' if run.outcome.ok else 'FAILED'} in {time.monotonic() - began:.0f}s")
    return run.outcome
