"""Scenario 1: the worker's whole process group SIGKILLed mid-delivery."""

import contextlib
import time

from devstack.settle import WaitTimeout, wait_until
from devstack.shoppers import plan_orders

from ..figures import sending_now
from ..harness import DRIVE_TIMEOUT, ChaosRun, Scenario


def worker_killed(run: ChaosRun) -> None:
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
        wait_until(lambda share=share: state.progress() >= share, timeout=120, what="orders")
        since = last_kill  # claims left by the previous kill are not in flight any more
        with contextlib.suppress(WaitTimeout):  # a kill with nothing in flight still counts
            wait_until(
                lambda since=since: sending_now(claimed_after=since), timeout=10, interval=0.02
            )
        in_flight.append(sending_now(claimed_after=since))
        run.stack.kill("worker")
        last_kill = time.time()
        run.say(f"SIGKILLed the worker group with {in_flight[-1]} attempt(s) in flight")
        if kill < sizes.kills - 1:
            run.start("worker")
    state.wait(timeout=DRIVE_TIMEOUT)
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


SCENARIOS = [Scenario("1", "worker SIGKILLed (whole group) mid-delivery", worker_killed)]
