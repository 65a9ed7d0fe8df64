"""One run of the whole system under faults: the world of each ``make chaos`` scenario, and of
``make demo`` (scenario 0: a share of first deliveries refused, a share dropped).

A ``Run`` is a ``Stack`` (its own Redis unless one is named) whose accounts side is published
behind a ``FaultProxy`` (``ACCOUNTS_PUBLIC_URL`` is the proxy's URL, so every notify_url an
order carries is the proxy's, and the proxy forwards to the web server), orders placed through
the pages, the moment the fault ended, and the wait until the audit is clean. The caller
provides the database (migrated) and this process's Django (``django_setup``).
"""

import shutil
import sys
import time
from pathlib import Path

from .proxy import FaultProxy
from .settle import settle
from .shoppers import Drive, drive
from .stack import Stack


class Run:
    """See the module docstring. ``settings`` are the stack's (DATABASE_URL among them);
    ``log_dir`` is emptied at the start and holds every process's log; orders are placed by
    ``users`` users (``seed_demo --users``), ``threads`` at a time; settling waits at most
    ``settle_timeout`` seconds. A context manager: Redis (when private) and the proxy start
    on entry, everything stops on exit (on RabbitMQ the namespace's queues and exchanges are
    deleted: ``settings`` give the run a DEPLOYMENT_NAMESPACE of its own). ``receiver`` and
    ``make_stack`` (called as ``Stack`` is) replace the loopback proxy and stack: a simulated
    cluster's (``devstack.cluster``)."""

    def __init__(
        self,
        *,
        name: str,
        settings: dict,
        log_dir: Path,
        redis_url: str | None = None,
        users: int,
        threads: int,
        settle_timeout: float,
        receiver: FaultProxy | None = None,
        make_stack=Stack,
    ):
        self.name = name
        self.log_dir = log_dir
        self.users, self.threads, self.settle_timeout = users, threads, settle_timeout
        self.receiver = receiver or FaultProxy()
        self.stack = make_stack(
            settings={**settings, "ACCOUNTS_PUBLIC_URL": self.receiver.url},
            log_dir=log_dir,
            redis_url=redis_url,
        )
        self.receiver.upstream = self.stack.web_url
        self.fault_ended: float | None = None
        # accounts' merchant (an id) once the run onboards others, whose orders accounts
        # never sees: the audit then compares only its orders. None: every order is accounts'.
        self.accounts_merchant: int | None = None

    def __enter__(self) -> "Run":
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        self.stack.open()
        self.receiver.start()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stack.close()
            self.stack.broker_delete()  # the run's namespace is its own: nothing to keep
        finally:
            self.receiver.close()

    def say(self, message: str) -> None:
        print(f"[{self.name}] {message}", file=sys.stderr, flush=True)

    def start(self, *names: str) -> None:
        """Start Procfile processes together and wait until each is ready."""
        began = time.monotonic()
        self.stack.start(*names)
        self.say(f"started {', '.join(names)} in {time.monotonic() - began:.1f}s")

    def drive(self, orders: list) -> Drive:
        """Start placing ``orders`` through the pages (``devstack.shoppers.drive``)."""
        return drive(
            base_url=self.stack.web_url, orders=orders, users=self.users, threads=self.threads
        )

    def end_fault(self, at: float | None = None) -> None:
        """Mark the fault's end (``time.time()``, default now): settling is timed from it."""
        self.fault_ended = at or time.time()

    def settle(self, on_poll=None) -> float | None:
        """Wait until settled (``devstack.settle``); seconds from the fault's end, or None
        when it did not settle within ``settle_timeout``."""
        assert self.fault_ended is not None, "end_fault() first"
        settled_at = settle(
            timeout=self.settle_timeout,
            stack=self.stack,
            on_poll=on_poll,
            merchant=self.accounts_merchant,
        )
        if settled_at is None:
            self.say(f"NOT settled within {self.settle_timeout:.0f}s")
            return None
        seconds = max(0.0, settled_at - self.fault_ended)
        self.say(f"settled {seconds:.1f}s after the fault ended")
        return seconds
