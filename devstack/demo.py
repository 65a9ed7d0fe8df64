"""``make demo``: scenario 0 with a summary — the whole stack on real input, with receiver
faults, and a check that the books balance.

A ``devstack.run.Run``, as every ``make chaos`` scenario is: web, payments API, worker and
beat on free ports against a fresh demo database, accounts behind the fault proxy, which
refuses ``DEMO_REFUSE`` of first deliveries (503) and drops ``DEMO_DROP`` of notifications
(acknowledged, never forwarded: only reconciliation can close those). ``DEMO_USERS`` users
place ``DEMO_ORDERS`` recharges through the real pages (the wallet's recharge form, the
cashier, Pay or Decline); then it waits, on a compressed schedule, until everything has
settled and the audit is clean, prints a summary (the proxy's own counts of what it injected)
and the per-account books, and exits 0 only when every order reached payments, nothing
failed at the pages and the audit is clean. Everything it started is stopped on the way out,
Ctrl-C included.

Settings (environment): DEMO_ORDERS (200), DEMO_USERS (10), DEMO_SEED (1), DEMO_PAY_SHARE
(0.8), DEMO_REFUSE (0.3), DEMO_DROP (0.1), DEMO_SETTLE_TIMEOUT (180 s), DEMO_THREADS (8, at
most twice the cores), DEMO_TIME_SCALE (0.02: the retry schedule's 15 s first step becomes
0.3 s). DATABASE_URL naming PostgreSQL selects a fresh ``recharge_demo`` database on that
server (the database it names is never touched); otherwise SQLite at var/demo.sqlite3.
REDIS_URL selects the broker (the demo's keys under a namespace of its own); without it the
demo runs a private packaged redis-server. The processes' logs go to var/demo/.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from tqdm import tqdm

from .browser import DriveError
from .database import fresh_database
from .demo_summary import account_rows, summary_rows
from .run import Run
from .settle import Backlog
from .shoppers import plan_orders
from .stack import VAR, django_setup
from .table import table

DEMO_DB_NAME = "recharge_demo"
SQLITE_PATH = VAR / "demo.sqlite3"
LOG_DIR = VAR / "demo"
DRIVE_TIMEOUT = 600  # seconds to place every order (about 0.1 s each here)


@dataclass(frozen=True)
class DemoConfig:
    orders: int = 200
    users: int = 10
    seed: int = 1
    pay_share: float = 0.8
    refuse: float = 0.3
    drop: float = 0.1
    settle_timeout: float = 180
    # Simulated browsers at once. More than twice the cores only queues requests behind one
    # another and starves the worker of CPU: deliveries then lag past ACCOUNTS_RECONCILE_AFTER
    # and reconciliation closes recharges that were merely late, blurring the demo.
    threads: int = field(default_factory=lambda: min(8, 2 * (os.cpu_count() or 1)))
    time_scale: float = 0.02

    @classmethod
    def from_env(cls, environ=os.environ) -> "DemoConfig":
        def get(name, cast, default):
            value = environ.get(name, "").strip()
            return cast(value) if value else default

        defaults = cls()
        return cls(
            orders=get("DEMO_ORDERS", int, defaults.orders),
            users=max(1, get("DEMO_USERS", int, defaults.users)),
            seed=get("DEMO_SEED", int, defaults.seed),
            pay_share=get("DEMO_PAY_SHARE", float, defaults.pay_share),
            refuse=get("DEMO_REFUSE", float, defaults.refuse),
            drop=get("DEMO_DROP", float, defaults.drop),
            settle_timeout=get("DEMO_SETTLE_TIMEOUT", float, defaults.settle_timeout),
            threads=max(1, get("DEMO_THREADS", int, defaults.threads)),
            time_scale=get("DEMO_TIME_SCALE", float, defaults.time_scale),
        )


def stack_settings(config: DemoConfig, database_url: str) -> dict[str, str]:
    """Settings for every process: the demo database, a compressed schedule."""
    return {
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "1",
        # A namespace of the run's own: on a shared REDIS_URL no other stack takes its messages.
        "DEPLOYMENT_NAMESPACE": f"demo-{secrets.token_hex(4)}",
        # Exponential 15 s, 30 s, 1 m, ... scaled: first retries well under a second or two.
        "NOTIFY_TIME_SCALE": str(config.time_scale),
        "NOTIFY_SWEEP_INTERVAL": "1",
        "NOTIFY_CIRCUIT_OPEN_FOR": "2",
        "ACCOUNTS_RECONCILE_AFTER": "3",
        "ACCOUNTS_RECONCILE_INTERVAL": "1",
        "WORKER_CONCURRENCY": "4",
        # DEMO_ORDERS placed by DEMO_USERS users in seconds, many pending until notified: far
        # past the per-user limits on starting recharges, which no person reaches.
        "ACCOUNTS_RECHARGE_USER_RATE": "1000000/min",
        "ACCOUNTS_RECHARGE_PENDING_MAX": "1000000",
    }


@dataclass
class Timings:
    marks: dict = field(default_factory=lambda: {"begin": time.monotonic()})

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def span(self, first: str, last: str) -> float:
        return self.marks[last] - self.marks[first]


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    config = DemoConfig.from_env()
    orders = plan_orders(config.orders, seed=config.seed, decline=1 - config.pay_share)
    timings = Timings()
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        database_url = fresh_database(
            os.environ.get("DATABASE_URL"),
            name=DEMO_DB_NAME,
            sqlite_path=SQLITE_PATH,
            owner="the demo",
        )
        run = Run(
            name="demo",
            settings=stack_settings(config, database_url),
            log_dir=LOG_DIR,
            redis_url=os.environ.get("REDIS_URL"),
            users=config.users,
            threads=config.threads,
            settle_timeout=config.settle_timeout,
        )
        run.receiver.refuse_first, run.receiver.drop = config.refuse, config.drop
        print(
            f"demo: {config.orders} recharges by {config.users} users, pay {config.pay_share:.0%}"
            f", refuse {config.refuse:.0%} of first deliveries, drop {config.drop:.0%}; "
            f"database {database_url.split('@')[-1]}; logs {LOG_DIR}/",
            file=sys.stderr,
        )
        with run:
            return scenario_zero(run, config=config, orders=orders, timings=timings)
    except KeyboardInterrupt:
        print("\ndemo: interrupted; stopping the stack", file=sys.stderr)
        return 130
    except (DriveError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"demo: FAILED: {exc} (logs: {LOG_DIR}/)", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)


def scenario_zero(run: Run, *, config: DemoConfig, orders: list, timings: Timings) -> int:
    """Seed, start, place the orders, settle, report; the exit status."""
    run.stack.prepare(users=config.users)
    run.start("web", "payments", "worker", "beat")
    timings.mark("started")
    with tqdm(total=len(orders), desc="recharges", unit="order", file=sys.stderr) as bar:

        def placed(done: int, errors: int) -> None:
            bar.update(done - bar.n)
            bar.set_postfix(errors=errors, refresh=False)

        state = run.drive(orders)
        state.wait(timeout=DRIVE_TIMEOUT, on_progress=placed)
    timings.mark("driven")
    run.end_fault()
    django_setup(run.stack.env)
    expected = len(orders) - len(state.errors)
    with tqdm(total=expected, desc="settling ", unit="recharge", file=sys.stderr) as bar:

        def polled(backlog: Backlog) -> None:
            bar.update(backlog.closed_recharges - bar.n)
            bar.set_postfix(
                pending_orders=backlog.pending_orders, in_flight=backlog.in_flight, refresh=False
            )

        settled = run.settle(on_poll=polled)
    timings.mark("settled")
    return report(run, orders=orders, errors=state.errors, settled=settled, timings=timings)


def report(run: Run, *, orders: list, errors: list, settled: float | None, timings) -> int:
    """Print the summary, the books per account and any problem; the exit status."""
    from audit.checks import audit
    from payments.models import RechargeOrder

    result = audit()
    rows = summary_rows(
        orders=orders, errors=errors, report=result, proxy=run.receiver, timings=timings
    )
    print(f"\n{table(('', 'value'), rows, 'lr')}\n")
    headers = ("account", "orders", "paid", "credits", "ledger", "balance", "balanced")
    print(table(headers, account_rows(result), "lrrrrrl"))
    problems = [*errors, *result.problems()]
    reached = RechargeOrder.objects.count()
    if settled is None:
        problems.insert(0, "not settled in time")
    if reached != len(orders):
        problems.insert(0, f"{reached} orders reached payments, not {len(orders)}")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        print("\n".join(f"  - {line}" for line in problems[:50]))
        if len(problems) > 50:
            print(f"  ... and {len(problems) - 50} more")
        print(f"logs: {LOG_DIR}/")
    ok = not problems and result.clean
    print(f"\ndemo: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1
