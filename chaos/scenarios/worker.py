"""Scenarios 1 and 12: the worker's whole process group SIGKILLed mid-delivery, and with a
batch of requests in flight at a slow receiver."""

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
    abandoned = check_abandoned(run)
    run.check("the kills hit deliveries in flight", sum(in_flight) > 0, f"{in_flight}")
    run.note(
        f"{sizes.kills} SIGKILLs of the worker group with {'+'.join(map(str, in_flight))} "
        f"attempts in flight; {abandoned} abandoned attempts released by the sweeper and "
        "made again"
    )


BATCH_LATENCY = 2.0  # seconds the receiver takes to answer in scenario 12


def batch_killed(run: ChaosRun) -> None:
    """12. The orders' notifications wait in the outbox for a worker; the receiver answers
    after ``BATCH_LATENCY`` seconds. A worker starts, claims a batch and is SIGKILLed (its
    whole process group) as soon as half its endpoint's cap or more is in flight, ``kills``
    times, a new one started after each kill. The killed claims hold the endpoint's cap
    until the sweeper releases them (``NOTIFY_CLAIM_TIMEOUT``); the last worker delivers
    everything."""
    sizes = run.sizes
    run.receiver.latency = BATCH_LATENCY
    run.start("web", "payments", "beat")  # no worker: every notification waits, due
    state = run.drive(plan_orders(sizes.orders, seed=14)).wait(timeout=DRIVE_TIMEOUT)
    batch = min(int(run.env["NOTIFY_ENDPOINT_MAX_IN_FLIGHT"]), len(state.tx_nos)) // 2
    in_flight, kills = _kill_batches(run, batch)
    run.end_fault(kills[-1])
    run.start("worker")
    run.settle()
    run.figures()
    run.check_drive(state)
    abandoned = check_abandoned(run)
    held = [sum(s.arrived < kill < s.answered for s in run.receiver.seen) for kill in kills]
    run.check(
        "every kill cut off requests the receiver was holding",
        all(held),
        f"claimed {in_flight}, being answered {held}",
    )
    run.note(
        f"{sizes.kills} SIGKILLs of the worker group with {'+'.join(map(str, in_flight))} "
        f"attempts claimed ({'+'.join(map(str, held))} of them being answered by the receiver, "
        f"which takes {BATCH_LATENCY:g}s, when the group died); {abandoned} abandoned attempts "
        "released by the sweeper and made again"
    )


def _kill_batches(run: ChaosRun, batch: int) -> tuple[list, list]:
    """``kills`` times: start a worker, SIGKILL its group once ``batch`` attempts or more
    claimed since the last kill are in flight and have had time to reach the receiver
    (which holds each for ``BATCH_LATENCY`` seconds). Returns (attempts in flight at each kill,
    the kills' ``time.time()``)."""
    in_flight, kills = [], [0.0]
    for _ in range(run.sizes.kills):
        run.start("worker")
        since = kills[-1]
        wait_until(
            lambda since=since: sending_now(claimed_after=since) >= batch,
            timeout=60,
            interval=0.02,
            what="a batch in flight",
        )
        time.sleep(BATCH_LATENCY / 4)  # the batch's requests reach the receiver, held there
        in_flight.append(sending_now(claimed_after=since))
        run.stack.kill("worker")
        kills.append(time.time())
        run.say(f"SIGKILLed the worker group with {in_flight[-1]} attempts in flight")
    return in_flight, kills[1:]


def check_abandoned(run: ChaosRun) -> int:
    """Check that the attempts beyond the minimum are the kills' abandoned ones (released by
    the sweeper, made again); returns how many were abandoned."""
    from notifications.models import DeliveryAttempt

    abandoned = DeliveryAttempt.objects.filter(error__startswith="abandoned").count()
    run.check(
        "the only extra attempts are the ones the kills abandoned",
        run.outcome.beyond == abandoned,
        f"{run.outcome.beyond} beyond the minimum, {abandoned} abandoned",
    )
    return abandoned


SCENARIOS = [
    Scenario("1", "worker SIGKILLed (whole group) mid-delivery", worker_killed),
    Scenario(
        "12",
        "worker SIGKILLed (whole group) with a batch in flight",
        batch_killed,
        {
            "NOTIFY_ENDPOINT_MAX_IN_FLIGHT": "64",
            # The receiver's 2 s plus accounts' answer, with 64 at once on a loaded machine,
            # stays well inside the deadline; the claims of the dead stay twice as long.
            "NOTIFY_ATTEMPT_DEADLINE": "6",
            "NOTIFY_CLAIM_TIMEOUT": "12",
        },
    ),
]
