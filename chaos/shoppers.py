"""Orders through the real pages: users log in, top up on the wallet's form (accounts creates
the order over payments' merchant API) and pay or decline at the cashier.

Two requests per order: ``POST /recharges/`` (→ 302 to the cashier) and ``POST /pay/{tx_no}/``
with ``action`` (→ 302 to the return URL), each by a ``devstack.browser.Browser``.
"""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from devstack.browser import Browser, DriveError

HTTP_TIMEOUT = 60  # seconds: generous, a request may wait out a publish to a Redis that is down


@dataclass(frozen=True)
class PlannedOrder:
    """``amount`` as typed ("12.34"); ``action`` "pay", "decline" or None (left pending)."""

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
    """Orders being driven in the background: ``wait()`` for the result."""

    total: int
    done: int = 0
    tx_nos: dict = field(default_factory=dict)  # order number -> tx_no
    errors: list = field(default_factory=list)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, timeout: float | None = None) -> "Drive":
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"driving orders did not finish within {timeout:.0f}s")
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def progress(self) -> float:
        with self._lock:
            return self.done / self.total if self.total else 1.0


def drive(
    *, base_url: str, orders: list, users: int, threads: int, background: bool = True
) -> Drive:
    """Drive ``orders`` through the pages with ``threads`` users at once (demo1..demoN).

    Each thread is one user working through its share of the orders in turn. Errors are
    collected, not raised: a fault may legitimately make a page fail.
    """
    threads = max(1, min(threads, users, len(orders) or 1))
    state = Drive(total=len(orders))

    def work(slot: int) -> None:
        shopper = Browser(
            base_url=base_url, username=f"demo{slot + 1}", password="demo", timeout=HTTP_TIMEOUT
        )
        try:
            shopper.login()
        except DriveError as exc:
            with state._lock:
                state.errors.append(f"login demo{slot + 1}: {exc}")
            return
        for order in orders[slot::threads]:
            try:
                cashier_url = shopper.top_up(order.amount)
                tx_no = cashier_url.rstrip("/").rsplit("/", 1)[-1]
                if order.action:
                    shopper.finish(cashier_url, order.action)
                with state._lock:
                    state.tx_nos[order.number] = tx_no
            except DriveError as exc:
                with state._lock:
                    state.errors.append(f"order {order.number}: {exc}")
            finally:
                with state._lock:
                    state.done += 1

    def run() -> None:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="shopper") as pool:
            list(pool.map(work, range(threads)))
        state.finished = time.time()

    state._thread = threading.Thread(target=run, daemon=True)
    state._thread.start()
    if not background:
        state.wait()
    return state
