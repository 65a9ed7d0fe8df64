"""Scenarios 2c, 2d and 5b: RabbitMQ's counterparts of 2a, 2b and 5 — the namespace's queues
purged, the stack's connections closed by the broker, and redelivery of what a SIGKILLed
worker held unacknowledged (with hand-made duplicates). Each touches only the scenario's own
queues (its DEPLOYMENT_NAMESPACE) and the connections of its own processes
(``devstack.stack.Stack.broker_connections``): the RabbitMQ is shared."""

import os
import signal
import threading
import time
from collections import Counter

from devstack.settle import wait_until
from devstack.shoppers import Drive, plan_orders

from ..figures import at, redeliveries
from ..harness import DRIVE_TIMEOUT, ChaosRun, Scenario
from .broker import duplicating, send_burst
from .worker import check_abandoned

QUEUES = ("notifications", "periodic")  # the queues the stack's worker consumes from
PROCESSES = ("web", "payments", "worker", "beat")  # every process of the stack


def rabbitmq_purged(run: ChaosRun) -> None:
    """2c. The namespace's queues purged mid-run and right after the last order. Before each
    purge the worker stops consuming (from 40% of the orders to 50%, and from 90% to the
    last one), so the wake-ups of the orders paid meanwhile and beat's ticks wait in the
    queues and are lost with them: the sweeper must wake a worker for every due row."""
    run.receiver.refuse_first = 0.3  # as in 2a: retries under way at each purge
    run.start(*PROCESSES)
    state = run.drive(plan_orders(run.sizes.orders, seed=2))
    purges = [_hold_and_purge(run, state, since=0.4, until=0.5)]
    run.say(f"purged at 50% of the orders: {purges[-1]}")
    purges.append(_hold_and_purge(run, state, since=0.9, until=1.0))
    run.say(f"purged after the last order: {purges[-1]}")
    run.end_fault()
    run.settle()
    run.figures()
    run.check_drive(state)
    lost = sum(sum(purge.values()) for purge in purges)
    run.check("the purges removed messages (the fault happened)", lost > 0, f"{purges}")
    run.note(
        "queues purged at 50% and after the last order: "
        + ", ".join(" + ".join(f"{n} {queue}" for queue, n in purge.items()) for purge in purges)
        + f" messages lost ({lost}); the worker had stopped consuming for 10% of the orders "
        "before each purge"
    )


def _hold_and_purge(run: ChaosRun, state: Drive, *, since: float, until: float) -> dict:
    """Once ``since`` of the orders are placed, stop the worker consuming (Celery's remote
    control); once ``until`` are (1.0: all of them), purge QUEUES and let it consume again.
    Returns ``{queue: messages purged}``."""
    wait_until(lambda: state.progress() >= since, timeout=300, what=f"{since:.0%} of the orders")
    run.stack.consume(*QUEUES, on=False)
    try:
        wait_until(lambda: state.progress() >= until, timeout=DRIVE_TIMEOUT, what=f"{until:.0%}")
        return run.stack.purge(*QUEUES)
    finally:
        run.stack.consume(*QUEUES, on=True)


CLOSE_EVERY = 2.0  # seconds between two rounds of closing during the outage
ROUNDS = 2  # rounds of closing at least, however long each takes (rabbitmqctl is slow)


def rabbitmq_connections_closed(run: ChaosRun) -> None:
    """2d. RabbitMQ closes every connection of the stack's processes (the gunicorns' workers
    publishing wake-ups, the worker's consumer, pool and event connections, beat's
    publisher) at 20% of the orders, then again every CLOSE_EVERY seconds for the outage
    (ROUNDS times at least; no new round past 80% of the orders, so that orders are paid
    after it too); orders keep coming. Each process must reconnect by itself: publishers
    on their next publish (a wake-up whose publish failed stays due in the outbox for the
    sweeper), the worker's consumer at once."""
    from notifications.models import Notification
    from payments.models import RechargeOrder

    run.start(*PROCESSES)
    state = run.drive(plan_orders(run.sizes.orders, seed=3))
    wait_until(lambda: state.progress() >= 0.2, timeout=300, what="20% of the orders")
    down = time.time()
    closed, rounds = _close_repeatedly(run, state)
    up = time.time()
    run.say(f"{rounds} rounds in {up - down:.1f}s closed {dict(closed)} connections")
    state.wait(timeout=DRIVE_TIMEOUT)
    run.end_fault(max(up, state.finished))
    run.settle()
    run.figures()
    run.check_drive(state)
    run.check(
        "RabbitMQ closed connections of the worker, beat and web (the fault happened)",
        all(closed[key] for key in ("worker", "beat", "web")),
        f"{dict(closed)} in {rounds} rounds",
    )
    # A publisher connects again on its next publish: web only if orders were paid after.
    after = RechargeOrder.objects.filter(finished_at__gt=at(up)).count()
    connected = {key: len(pids) for key, pids in run.stack.broker_connections(*PROCESSES).items()}
    run.check(
        "the worker and beat connected again, and web if orders were paid after the outage",
        connected["worker"] and connected["beat"] and (connected["web"] or not after),
        f"connections now {connected}; {after} orders paid after the outage",
    )
    paid = RechargeOrder.objects.filter(finished_at__gte=at(down), finished_at__lte=at(up))
    during = list(paid.values_list("tx_no", flat=True))
    delivered = Notification.objects.filter(
        subject__in=during, state=Notification.State.DELIVERED
    ).count()
    run.check(
        "orders were paid while connections were being closed, and delivered",
        0 < len(during) == delivered,
        f"{len(during)} paid, {delivered} delivered",
    )
    run.note(
        f"{sum(closed.values())} connections closed by RabbitMQ in {rounds} rounds over "
        f"{up - down:.1f}s ({dict(closed)}); {len(during)} orders paid meanwhile, all "
        f"delivered; {after} paid after; connections afterwards {connected}"
    )


def _close_repeatedly(run: ChaosRun, state: Drive) -> tuple[Counter, int]:
    """Close every connection of the stack's processes, then again every CLOSE_EVERY seconds
    until the outage has passed or 80% of the orders are placed, ROUNDS times at least.
    Returns ({process key: connections closed}, rounds)."""
    closed: Counter = Counter()
    rounds = 0
    ends = time.time() + run.sizes.outage
    while rounds < ROUNDS or (time.time() < ends and state.progress() < 0.8):
        closed.update(run.stack.close_broker_connections(*PROCESSES))
        rounds += 1
        time.sleep(CLOSE_EVERY)
    return closed, rounds


def rabbitmq_redelivered(run: ChaosRun) -> None:
    """5b. Two workers. ``kills`` times, right after a burst of wake-ups (``send_burst``), the
    first worker's group is frozen (SIGSTOP) while RabbitMQ counts the messages it holds
    unacknowledged on its channels, then SIGKILLed: RabbitMQ hands them at once to the
    other worker (no visibility timeout), and a new first worker starts. Every
    notification's wake-up is also duplicated by hand, as in 5. The receiver must see each
    claimed attempt once (one the kill abandoned, at most once), and the only attempts
    beyond the minimum are those the kills abandoned."""
    sizes = run.sizes
    run.receiver.refuse_first = 0.3  # as in 5: retries under way at each kill
    run.start("web", "payments", "beat")
    for key in ("worker", "worker2"):
        _start_worker(run, key)
    state = run.drive(plan_orders(sizes.orders, seed=6))
    burst: Counter = Counter()
    held: list[int] = []  # unacknowledged messages the first worker held at each kill
    with duplicating(run, lambda stop: _kill_holding(run, stop, burst, held)) as duplicated:
        state.wait(timeout=DRIVE_TIMEOUT)
        wait_until(lambda: len(held) == sizes.kills, timeout=300, what="the kills")
    run.end_fault()
    run.settle()
    run.figures(exact_receiver=True)
    run.check_drive(state)
    abandoned = check_abandoned(run)
    redelivered = redeliveries(run.log_dir)
    run.check(
        "the killed worker held unacknowledged messages (the fault happened)",
        sum(held) > 0,
        f"{held}",
    )
    run.check(
        "RabbitMQ redelivered messages a killed worker had received",
        redelivered > 0,
        f"{redelivered} redeliveries",
    )
    run.note(
        f"{sizes.kills} SIGKILLs of a frozen worker holding {'+'.join(map(str, held))} "
        f"unacknowledged messages; {redelivered} messages it had received were redelivered; "
        f"{sum(duplicated.values()) + sum(burst.values())} wake-ups sent by hand; "
        f"{abandoned} abandoned attempts released by the sweeper and made again"
    )


def _kill_holding(run: ChaosRun, stop: threading.Event, burst: Counter, held: list) -> None:
    """The kills of 5b until ``stop``: each time a burst, the first worker's group frozen
    (SIGSTOP) and RabbitMQ asked how many messages it holds unacknowledged (appended to
    ``held``), then SIGKILLed and a new one started. Never thawed: a freeze can outlast
    NOTIFY_CLAIM_TIMEOUT (rabbitmqctl takes seconds on a loaded machine), and a worker
    woken after the sweeper released its claims would record attempts made again since."""
    for _ in range(run.sizes.kills):
        if stop.wait(2.0):
            return
        send_burst(run, burst)
        os.killpg(run.stack.pid("worker"), signal.SIGSTOP)
        held.append(run.stack.broker_unacked("worker"))
        run.stack.kill("worker")
        run.say(f"SIGKILLed the frozen worker group holding {held[-1]} unacknowledged messages")
        _start_worker(run, "worker")


def _start_worker(run: ChaosRun, key: str) -> None:
    """Start a worker as ``key``, named ``<key>@<host>`` (two on one host need names of
    their own), and wait until that very one answers a ping."""
    began = time.monotonic()
    run.stack.launch("worker", key=key, args=f"-n {key}@%h")
    run.stack.wait_ready("worker", key=key, node=key)
    run.say(f"started {key} in {time.monotonic() - began:.1f}s")


SCENARIOS = [
    Scenario(
        "2c",
        "RabbitMQ queues purged mid-run and at the end",
        rabbitmq_purged,
        rabbitmq_only="it purges the namespace's RabbitMQ queues (2a flushes Redis instead)",
    ),
    Scenario(
        "2d",
        "RabbitMQ closes the stack's connections, repeatedly",
        rabbitmq_connections_closed,
        rabbitmq_only=(
            "RabbitMQ closes the stack's connections (2b stops the stack's Redis instead)"
        ),
    ),
    Scenario(
        "5b",
        "RabbitMQ redelivers a killed worker's messages + duplicates",
        rabbitmq_redelivered,
        {
            # As in 5. Each kill's new worker loads the machine while it starts: with 3 s,
            # attempts timed out for want of CPU (14 of 288 on 2 busy cores), not the fault.
            "NOTIFY_ATTEMPT_DEADLINE": "8",
            "NOTIFY_CLAIM_TIMEOUT": "20",
        },
        rabbitmq_only=(
            "RabbitMQ redelivers what a closed connection held unacknowledged (5 makes Redis "
            "redeliver with a 2 s visibility timeout instead)"
        ),
    ),
]
