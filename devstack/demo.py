"""``make demo``: the whole stack on real input, with faults, and a check that the books balance.

Starts web, payments API, worker and beat (as ``make run`` does, on free ports, against a fresh
demo database), logs in ``DEMO_USERS`` users over HTTP and drives ``DEMO_ORDERS`` recharges
through the real pages — the wallet's recharge form, the cashier (pay or decline) and the
return page — while the receiver refuses a share of first deliveries (503) and silently drops
a share of notifications, which only reconciliation can then close. It waits for everything to
settle on a compressed schedule, prints a summary and the per-account books, and exits 0 only
when every recharge settled and ``audit.checks`` finds nothing wrong. Everything it started
is stopped on the way out, Ctrl-C included.

Settings (environment): DEMO_ORDERS (200), DEMO_USERS (10), DEMO_SEED (1), DEMO_PAY_SHARE
(0.8), DEMO_REFUSE (0.3), DEMO_DROP (0.1), DEMO_SETTLE_TIMEOUT (180 s), DEMO_THREADS (8, at
most twice the cores), DEMO_TIME_SCALE (0.02: the retry schedule's 15 s first step becomes
0.3 s). DATABASE_URL naming PostgreSQL selects a fresh ``recharge_demo`` database on that
server (the database it names is never touched); otherwise SQLite at var/demo.sqlite3.
REDIS_URL selects the broker; without it the demo runs a private packaged redis-server. The
stack's output goes to var/demo.log.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tqdm import tqdm

from .browser import Browser, DriveError
from .database import fresh_database
from .redis import start_redis
from .stack import ROOT, VAR, Stack

DEMO_DB_NAME = "recharge_demo"
SQLITE_PATH = VAR / "demo.sqlite3"
LOG_PATH = VAR / "demo.log"
HTTP_TIMEOUT = 30  # seconds, per request of the simulated browser


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


# --- The stack ------------------------------------------------------------------------------


def stack_env(config: DemoConfig, database_url: str) -> dict[str, str]:
    """Settings for every process: the demo database, faults on, a compressed schedule."""
    return {
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "1",
        "ACCOUNTS_FAULT_REFUSE_FIRST": str(config.refuse),
        "ACCOUNTS_FAULT_DROP": str(config.drop),
        # Exponential 15 s, 30 s, 1 m, ... scaled: first retries well under a second or two.
        "NOTIFY_TIME_SCALE": str(config.time_scale),
        "NOTIFY_SWEEP_INTERVAL": "1",
        "NOTIFY_REQUEUE_AFTER": "10",
        "ACCOUNTS_RECONCILE_AFTER": "3",
        "ACCOUNTS_RECONCILE_INTERVAL": "1",
        "WORKER_CONCURRENCY": "4",
    }


class DemoStack(Stack):
    """The usual stack, seeded with the demo users as well."""

    def __init__(self, *, users: int, **kwargs):
        super().__init__(**kwargs)
        self.users = users

    def prepare(self, env: dict) -> None:
        """As ``Stack.prepare`` (migrate, seed), the seed with ``--users`` and its output
        (the merchant's dev credentials) kept off the summary on stdout."""
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=ROOT)
        subprocess.run(
            [*manage, "seed_demo", "--users", str(self.users)],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )


# --- The simulated browsers -----------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """One planned recharge: ``amount`` as typed (``"12.34"``), then pay or decline."""

    number: int
    amount: str
    pay: bool


def plan(config: DemoConfig) -> list[Order]:
    """The recharges to drive, reproducible from ``DEMO_SEED``: 0.01–500.00, pay or decline."""
    rng = random.Random(config.seed)
    orders = []
    for number in range(config.orders):
        cents = rng.randint(1, 50_000)
        orders.append(
            Order(number, f"{cents // 100}.{cents % 100:02d}", rng.random() < config.pay_share)
        )
    return orders


class Shopper(Browser):
    """One logged-in demo user. The pool may hand it several orders at once; it works
    through them one at a time, like a person (and as its session allows)."""

    def __init__(self, *, base_url: str, username: str, password: str):
        super().__init__(
            base_url=base_url, username=username, password=password, timeout=HTTP_TIMEOUT
        )
        self.lock = threading.Lock()

    def recharge(self, order: Order) -> None:
        """Recharge form → cashier → pay or decline → return page. Raises DriveError."""
        with self.lock:
            cashier_url = self.top_up(order.amount)
            self.request("GET", cashier_url, expect=200, step="GET cashier")
            return_url = self.finish(cashier_url, "pay" if order.pay else "decline")
            self.request("GET", return_url, expect=200, step="GET return page")


def drive(
    *, base_url: str, config: DemoConfig, orders: list[Order], timings: "Timings"
) -> list[str]:
    """Log the users in and drive ``orders`` through the pages; returns the errors seen."""
    shoppers = [
        Shopper(base_url=base_url, username=f"demo{n}", password="demo")
        for n in range(1, config.users + 1)
    ]
    errors: list[str] = []
    executor = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="shopper")
    try:
        for future in as_completed([executor.submit(s.login) for s in shoppers]):
            future.result()
        timings.mark("logged_in")
        futures = {
            executor.submit(shoppers[order.number % len(shoppers)].recharge, order): order
            for order in orders
        }
        with tqdm(total=len(orders), desc="recharges", unit="order", file=sys.stderr) as bar:
            for future in as_completed(futures):
                try:
                    future.result()
                except DriveError as exc:
                    errors.append(f"order {futures[future].number}: {exc}")
                    bar.set_postfix(errors=len(errors))
                bar.update()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return errors


# --- Settling and reporting (the demo database through the ORM) -----------------------------


def django_setup(database_url: str) -> None:
    """Point this process's Django at the demo database (read-only use)."""
    os.environ.update(
        DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="1"
    )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def wait_settled(*, expected: int, timeout: float, stack: Stack) -> bool:
    """Until every recharge is closed and no notification is pending or sending, or
    ``timeout`` seconds. Raises RuntimeError when the stack dies meanwhile."""
    from accounts.models import Recharge
    from notifications.models import Notification

    in_flight_states = [Notification.State.PENDING, Notification.State.SENDING]
    deadline = time.monotonic() + timeout
    with tqdm(total=expected, desc="settling ", unit="recharge", file=sys.stderr) as bar:
        while True:
            open_recharges = Recharge.objects.filter(status=Recharge.Status.PENDING).count()
            closed = Recharge.objects.count() - open_recharges
            in_flight = Notification.objects.filter(state__in=in_flight_states).count()
            bar.update(closed - bar.n)
            bar.set_postfix(open=open_recharges, notifications_in_flight=in_flight)
            if open_recharges == 0 and in_flight == 0:
                return True
            if time.monotonic() > deadline:
                return False
            if stack.honcho.poll() is not None:
                raise RuntimeError(f"the stack stopped (exit {stack.honcho.returncode})")
            time.sleep(0.5)


@dataclass
class Timings:
    start: float = field(default_factory=time.monotonic)
    marks: dict = field(default_factory=dict)

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def span(self, first: str, last: str) -> float:
        return self.marks[last] - self.marks[first]


def summary_rows(*, orders: list[Order], errors: list[str], report, timings: Timings):
    """(label, value) rows of the summary table."""
    from accounts.models import InboundNotification, LedgerEntry, Recharge
    from notifications.models import DeliveryAttempt, Notification
    from payments.models import RechargeOrder

    order_status = RechargeOrder.Status
    notification_count = Notification.objects.count()
    planned_pay = sum(order.pay for order in orders)
    dropped_tx_nos = InboundNotification.objects.filter(
        outcome=InboundNotification.Outcome.DROPPED
    ).values("tx_no")
    return [
        ("orders (at payments / planned)", f"{RechargeOrder.objects.count()} / {len(orders)}"),
        ("succeeded (planned pay)", _with_plan(order_status.SUCCEEDED, planned_pay)),
        ("failed (planned decline)", _with_plan(order_status.FAILED, len(orders) - planned_pay)),
        ("still pending at payments", _orders(order_status.PENDING)),
        ("browser errors", len(errors)),
        (
            "notifications delivered",
            f"{_notifications(Notification.State.DELIVERED)} / {notification_count}",
        ),
        ("notifications exhausted", _notifications(Notification.State.EXHAUSTED)),
        ("delivery attempts", DeliveryAttempt.objects.count()),
        (
            "retries (attempts after the first)",
            DeliveryAttempt.objects.filter(number__gt=1).count(),
        ),
        # The receiver's log keeps only the latest outcome of a notification, and a refused
        # one is retried and then applied; the notifier's first attempt keeps the 503.
        (
            "refused first deliveries (503)",
            DeliveryAttempt.objects.filter(number=1, status_code=503).count(),
        ),
        (
            "dropped notifications",
            InboundNotification.objects.filter(outcome=InboundNotification.Outcome.DROPPED).count(),
        ),
        (
            "recharges closed by notification",
            Recharge.objects.filter(closed_by=LedgerEntry.Source.NOTIFICATION).count(),
        ),
        (
            "recharges closed by reconciliation",
            Recharge.objects.filter(closed_by=LedgerEntry.Source.RECONCILIATION).count(),
        ),
        (
            "  of which notification dropped",
            Recharge.objects.filter(
                closed_by=LedgerEntry.Source.RECONCILIATION, tx_no__in=dropped_tx_nos
            ).count(),
        ),
        ("median first-attempt delay (s)", f"{_median_first_attempt_delay():.2f}"),
        ("ledger credits", LedgerEntry.objects.count()),
        ("stack start (s)", f"{timings.span('begin', 'started'):.1f}"),
        ("log in (s)", f"{timings.span('started', 'logged_in'):.1f}"),
        ("drive recharges (s)", f"{timings.span('logged_in', 'driven'):.1f}"),
        ("settle (s)", f"{timings.span('driven', 'settled'):.1f}"),
        ("elapsed (s)", f"{timings.span('begin', 'settled'):.1f}"),
        ("books balance", "yes" if report.books_balance else "NO"),
    ]


def _orders(status) -> int:
    from payments.models import RechargeOrder

    return RechargeOrder.objects.filter(status=status).count()


def _with_plan(status, planned: int) -> str:
    return f"{_orders(status)} ({planned})"


def _median_first_attempt_delay() -> float:
    """Seconds from a notification's creation to its first attempt, median (0 if none)."""
    from notifications.models import DeliveryAttempt

    delays = sorted(
        (started - created).total_seconds()
        for started, created in DeliveryAttempt.objects.filter(number=1).values_list(
            "started_at", "notification__created_at"
        )
    )
    return delays[len(delays) // 2] if delays else 0.0


def _notifications(state) -> int:
    from notifications.models import Notification

    return Notification.objects.filter(state=state).count()


def table(headers: tuple, rows: list, align: str) -> str:
    """A Markdown table padded to line up in a terminal; ``align`` is "l"/"r" per column."""
    cells = [tuple(str(cell) for cell in row) for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        padded = (
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (width + 1) + (":" if side == "r" else "-")
            for width, side in zip(widths, align, strict=True)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def account_rows(report) -> list[tuple]:
    from core.money import format_minor

    return [
        (
            totals.account_no,
            totals.orders,
            format_minor(totals.succeeded, totals.currency),
            totals.credits,
            format_minor(totals.credited, totals.currency),
            format_minor(totals.balance, totals.currency),
            "yes" if totals.balanced else "NO",
        )
        for totals in report.accounts
    ]


# --- main -----------------------------------------------------------------------------------


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    config = DemoConfig.from_env()
    orders = plan(config)
    timings = Timings()
    timings.mark("begin")
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    stack = redis_process = None
    try:
        if not os.environ.get("REDIS_URL"):
            # A Redis of its own rather than whatever answers on 6379: a `make run` stack on
            # the same broker would take the demo's messages and the demo worker its.
            os.environ["REDIS_URL"], redis_process = start_redis(var_dir=VAR)
        database_url = fresh_database(
            os.environ.get("DATABASE_URL"),
            name=DEMO_DB_NAME,
            sqlite_path=SQLITE_PATH,
            owner="the demo",
        )
        shown = database_url.split("@")[-1]
        LOG_PATH.unlink(missing_ok=True)
        stack = DemoStack(
            users=config.users, env=stack_env(config, database_url), log_path=LOG_PATH
        )
        print(
            f"demo: {config.orders} recharges by {config.users} users, pay {config.pay_share:.0%}"
            f", refuse {config.refuse:.0%} of first deliveries, drop {config.drop:.0%}; "
            f"database {shown}; stack log {LOG_PATH}",
            file=sys.stderr,
        )
        stack.start()
        timings.mark("started")
        print(f"demo: stack up at {stack.web_url} (API {stack.payments_url})", file=sys.stderr)
        errors = drive(base_url=stack.web_url, config=config, orders=orders, timings=timings)
        timings.mark("driven")
        django_setup(database_url)
        settled = wait_settled(
            expected=config.orders - len(errors), timeout=config.settle_timeout, stack=stack
        )
        timings.mark("settled")
        return report(orders=orders, errors=errors, settled=settled, timings=timings, config=config)
    except KeyboardInterrupt:
        print("\ndemo: interrupted; stopping the stack", file=sys.stderr)
        return 130
    except (DriveError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"demo: FAILED: {exc} (stack log: {LOG_PATH})", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stack.stop()
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)
            port = urlsplit(os.environ["REDIS_URL"]).port
            (VAR / f"redis-{port}.log").unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, previous_sigterm)


def report(*, orders, errors, settled, timings, config) -> int:
    """Print the summary, the books per account and any problem; the exit status."""
    from audit.checks import audit
    from payments.models import RechargeOrder

    result = audit()
    print()
    print(
        table(
            ("", "value"),
            summary_rows(orders=orders, errors=errors, report=result, timings=timings),
            "lr",
        )
    )
    print()
    headers = ("account", "orders", "paid", "credits", "ledger", "balance", "balanced")
    print(table(headers, account_rows(result), "lrrrrrl"))
    problems = [*errors, *result.problems()]
    every_order = RechargeOrder.objects.count() == len(orders)
    if not settled:
        problems.insert(0, f"not settled within {config.settle_timeout:.0f}s")
    if not every_order:
        problems.insert(
            0, f"{RechargeOrder.objects.count()} orders reached payments, not {len(orders)}"
        )
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for line in problems[:50]:
            print(f"  - {line}")
        if len(problems) > 50:
            print(f"  ... and {len(problems) - 50} more")
        print(f"stack log: {LOG_PATH}")
    ok = settled and every_order and not errors and result.clean
    print(f"\ndemo: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1
