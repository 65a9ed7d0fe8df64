"""Waiting, bounded: ``wait_until`` (the harness's one polling loop) and ``settle`` (until the
audit is clean), read through this process's Django (``devstack.stack.django_setup``).

A run has *settled* when no order is pending at payments, no notification is pending or
being sent, and ``audit.checks.audit()`` is clean (every result applied once, every recharge
closed, nothing exhausted, the books balance).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

SETTLE_INTERVAL = 0.5  # seconds between two looks at the database


class WaitTimeout(RuntimeError):
    """A condition did not hold in time (the message says which)."""


def wait_until(
    condition: Callable[[], object],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "the condition",
    stack=None,
):
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and
    return that. Raises WaitTimeout after ``timeout`` seconds, and RuntimeError as soon as a
    process of ``stack`` (a ``devstack.stack.Stack``) has exited on its own."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if stack is not None and stack.exited():
            raise RuntimeError(f"stack processes exited while waiting for {what}: {stack.exited()}")
        if time.monotonic() > deadline:
            raise WaitTimeout(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


@dataclass(frozen=True)
class Backlog:
    """What is still open, counted from the database."""

    pending_orders: int  # at payments
    in_flight: int  # notifications pending or being sent
    closed_recharges: int  # at accounts

    @property
    def empty(self) -> bool:
        return not (self.pending_orders or self.in_flight)


def backlog() -> Backlog:
    from accounts.models import Recharge
    from notifications.models import Notification
    from payments.models import RechargeOrder

    in_flight = [Notification.State.PENDING, Notification.State.SENDING]
    return Backlog(
        pending_orders=RechargeOrder.objects.filter(status=RechargeOrder.Status.PENDING).count(),
        in_flight=Notification.objects.filter(state__in=in_flight).count(),
        closed_recharges=Recharge.objects.exclude(status=Recharge.Status.PENDING).count(),
    )


def settle(
    *,
    timeout: float,
    stack,
    on_poll: Callable[[Backlog], None] | None = None,
    merchant=None,
) -> float | None:
    """Wait until settled (see the module docstring), at most ``timeout`` seconds;
    ``on_poll`` sees each backlog (a progress bar); ``merchant`` (an id) is accounts' when
    the run has other merchants too: the audit compares only its orders with accounts'
    books. Returns the ``time.time()`` it settled at, or None at the deadline. Raises
    RuntimeError as ``wait_until`` does."""
    from audit.checks import audit

    def settled() -> bool:
        current = backlog()
        if on_poll is not None:
            on_poll(current)
        return current.empty and audit(merchant=merchant).clean

    try:
        wait_until(settled, timeout=timeout, interval=SETTLE_INTERVAL, what="settled", stack=stack)
    except WaitTimeout:
        return None
    return time.time()
