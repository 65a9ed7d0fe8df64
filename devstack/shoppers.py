"""People at browsers: recharges planned from a seed and placed through the real pages.

Each order is the wallet's recharge form (→ 302 to the cashier), the cashier page, and then
Pay or Decline (→ 302 to the return URL) or nothing (left pending), by the users ``demo1`` ..
``demoN`` that ``seed_demo --users N`` creates, each a ``devstack.browser.Browser``.
"""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .browser import Browser, DriveError
from .settle import wait_until

# Seconds per request: generous, as a request may wait out a publish to a Redis that is down.
HTTP_TIMEOUT = 60


@dataclass(frozen=True)
class PlannedOrder:
    """``amount`` as typed (``"12.34"``); ``action`` "pay", "decline" or None (left pending)."""

    number: int
    amount: str
    action: str | None


def plan_orders(count: int, *, seed: int, decline: float = 0.2, unpaid: float = 0.0) -> list:
    """``count`` orders, reproducible from ``seed``: 0.01–500.00, a share declined or unpaid."""
    rng = random.Random(seed)
    orders = []
    for number in range(count):
        cents = rng.randint(1, 50_000)
        roll = rng.random()
        action = None if roll < unpaid else "decline" if roll < unpaid + decline else "pay"
        orders.append(PlannedOrder(number, f"{cents // 100}.{cents % 100:02d}", action))
    return orders


@dataclass
class Drive:
    """Orders being placed in the background: ``wait()`` for the end."""

    total: int
    done: int = 0
    tx_nos: dict = field(default_factory=dict)  # order number -> tx_no
    errors: list = field(default_factory=list)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, timeout: float, on_progress=None) -> "Drive":
        """Until every order was placed; ``on_progress(done, errors)`` every 0.2 s. Raises
        WaitTimeout after ``timeout`` seconds."""

        def finished() -> bool:
            if on_progress is not None:
                on_progress(self.done, len(self.errors))
            return not self._thread.is_alive()

        wait_until(finished, timeout=timeout, interval=0.2, what="placing the orders")
        return self

    def progress(self) -> float:
        """The share of orders placed (or failed), 0 to 1."""
        with self._lock:
            return self.done / self.total if self.total else 1.0

    def _record(self, order: PlannedOrder, *, tx_no: str = "", error: str = "") -> None:
        with self._lock:
            self.done += 1
            if tx_no:
                self.tx_nos[order.number] = tx_no
            if error:
                self.errors.append(f"order {order.number}: {error}")


def place(browser: Browser, order: PlannedOrder) -> str:
    """One order through the pages; returns its tx_no. Raises DriveError."""
    cashier_url = browser.top_up(order.amount)
    browser.request("GET", cashier_url, expect=200, step="GET cashier")
    if order.action:
        browser.finish(cashier_url, order.action)
    return cashier_url.rstrip("/").rsplit("/", 1)[-1]


def drive(*, base_url: str, orders: list, users: int, threads: int) -> Drive:
    """Start placing ``orders`` on the web app at ``base_url`` with ``threads`` browsers at
    once, in the background; ``Drive.wait()`` for the end.

    Thread ``t`` places orders ``t``, ``t + threads``, ... by turns as its users ``demo<t+1>``,
    ``demo<t+1+threads>``, ... (each logged in once, when first needed). Errors are collected,
    not raised: a fault may legitimately make a page fail.
    """
    threads = max(1, min(threads, users, len(orders) or 1))
    state = Drive(total=len(orders))

    def work(slot: int) -> None:
        names = [f"demo{n}" for n in range(slot + 1, users + 1, threads)]
        browsers: dict[str, Browser] = {}
        for turn, order in enumerate(orders[slot::threads]):
            name = names[turn % len(names)]
            try:
                if name not in browsers:
                    browser = Browser(
                        base_url=base_url, username=name, password="demo", timeout=HTTP_TIMEOUT
                    )
                    browser.login()
                    browsers[name] = browser
                state._record(order, tx_no=place(browsers[name], order))
            except DriveError as exc:
                state._record(order, error=str(exc))

    def run() -> None:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="shopper") as pool:
            list(pool.map(work, range(threads)))
        state.finished = time.time()

    state._thread = threading.Thread(target=run, daemon=True)
    state._thread.start()
    return state
