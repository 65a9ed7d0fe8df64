"""Scenarios 2a, 2b and 5: the broker loses its messages, goes away, or delivers them again."""

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

from devstack.settle import wait_until
from devstack.shoppers import plan_orders

from ..figures import at, redeliveries
from ..harness import DRIVE_TIMEOUT, ChaosRun, Scenario


def redis_flushed(run: ChaosRun) -> None:
    """2a. FLUSHALL mid-run, and again right after the last order: queued and
    unacknowledged wake-up messages are all lost."""
    sizes = run.sizes
    run.receiver.refuse_first = 0.3  # refused first deliveries: retries under way at the flush
    run.start("web", "payments", "worker", "beat")
    state = run.drive(plan_orders(sizes.orders, seed=2))
    wait_until(lambda: state.progress() >= 0.5, timeout=300, what="half the orders")
    flushes = [run.stack.flushall()]
    run.say(f"FLUSHALL at 50%: lost {flushes[-1]}")
    state.wait(timeout=DRIVE_TIMEOUT)
    flushes.append(run.stack.flushall())
    run.say(f"FLUSHALL after the last order: lost {flushes[-1]}")
    run.end_fault()
    run.settle()
    run.figures()
    run.check_drive(state)
    lost = sum(f["queued"] + f["unacked"] for f in flushes)
    run.note(
        "FLUSHALL at 50% and 100% of orders: "
        + ", ".join(f"{f['queued']} queued + {f['unacked']} unacked" for f in flushes)
        + f" messages lost ({lost}); refused first deliveries (503) put countdowns in Redis"
    )


def redis_restarted(run: ChaosRun) -> None:
    """2b. Stop Redis (SIGKILL, no persistence), keep placing orders, start it again empty."""
    from payments.models import RechargeOrder

    sizes = run.sizes
    run.start("web", "payments", "worker", "beat")
    state = run.drive(plan_orders(sizes.orders, seed=3))
    wait_until(lambda: state.progress() >= 0.3, timeout=300, what="a third of the orders")
    run.stack.stop_redis()
    down = time.time()
    run.say(f"Redis stopped; orders keep coming for {sizes.outage:.0f}s")
    time.sleep(sizes.outage)
    run.stack.start_redis()
    up = time.time()
    run.say("Redis started again, empty")
    state.wait(timeout=DRIVE_TIMEOUT)
    run.end_fault(max(up, state.finished))
    run.settle()
    run.figures()
    run.check_drive(state)
    during = RechargeOrder.objects.filter(
        finished_at__gte=at(down), finished_at__lte=at(up)
    ).count()
    run.check("orders were paid while Redis was down", during > 0, f"{during}")
    run.note(
        f"Redis down {up - down:.1f}s and back empty; {during} orders paid meanwhile (their "
        "enqueue failed; the outbox kept them)"
    )


def redelivered(run: ChaosRun) -> None:
    """5. Wake-up messages redelivered by the broker (a 2 s visibility timeout, outlived by
    the messages a worker had reserved when it was frozen with SIGSTOP for longer, kombu
    issue 337) and duplicated by hand (``send_task``): the receiver must see each claimed
    attempt once (one the freeze made time out, at most once)."""
    from notifications.models import DeliveryAttempt

    sizes = run.sizes
    run.receiver.refuse_first = 0.3
    # Some deliveries run past the 2 s visibility timeout (about 30, at most a fifth).
    run.receiver.slow_share = min(0.2, 30 / max(sizes.orders, 1))
    run.receiver.slow_seconds = 3.0
    run.start("web", "payments", "worker", "beat")
    state = run.drive(plan_orders(sizes.orders, seed=6))
    burst: Counter = Counter()  # the freezer's own wake-ups, sent just before each freeze
    with duplicating(run, lambda stop: _freeze_worker(run, stop, burst)) as duplicated:
        state.wait(timeout=DRIVE_TIMEOUT)
        time.sleep(1.0)
    run.end_fault()
    run.settle()
    # A freeze spends the deadline of the attempts in flight: those that time out are forced
    # by the fault, and are the only ones the receiver may not have seen.
    timed_out = DeliveryAttempt.objects.filter(error__startswith="timeout after").count()
    run.figures(forced=timed_out, exact_receiver=True)
    run.check_drive(state)
    redelivered_ids = redeliveries(run.log_dir)
    run.check(
        "the broker redelivered messages (the fault happened)",
        redelivered_ids > 0,
        f"{redelivered_ids} redeliveries",
    )
    run.note(
        f"{redelivered_ids} messages redelivered by the broker (visibility 2 s) and "
        f"{sum(duplicated.values()) + sum(burst.values())} sent by hand; whichever copy came "
        "first claimed the attempt, the others found nothing to do: no attempt went out twice; "
        f"{timed_out} attempts timed out across a freeze and were made again"
    )


@contextlib.contextmanager
def duplicating(run: ChaosRun, fault: Callable[[threading.Event], None]) -> Iterator[Counter]:
    """Around the block, two threads: one publishes a wake-up by hand (``send_deliver``) for
    every new notification every 0.3 s, the other runs ``fault(stop)`` until ``stop`` is
    set. On exit both stop, then every notification's wake-up is published once more (most
    of them delivered by then). Yields ``{notification id: wake-ups sent by hand}``."""
    from notifications.models import Notification

    duplicated: Counter = Counter()
    stop = threading.Event()

    def duplicate_new() -> None:
        while not stop.wait(0.3):
            ids = Notification.objects.exclude(pk__in=list(duplicated)).values_list("pk", flat=True)
            for notification_id in ids:
                run.stack.send_deliver(notification_id)
                duplicated[notification_id] += 1

    threads = [
        threading.Thread(target=duplicate_new, daemon=True),
        threading.Thread(target=fault, args=(stop,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield duplicated
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    for notification_id in Notification.objects.values_list("pk", flat=True):
        run.stack.send_deliver(notification_id)
        duplicated[notification_id] += 1


FREEZES = 5  # times the worker is frozen past the visibility timeout, at most
FROZEN = 3.5  # seconds each time: past the 2 s visibility timeout
BURST = 200  # wake-ups published right before each freeze, so the worker holds some


def send_burst(run: ChaosRun, burst: Counter) -> None:
    """Publish BURST wake-ups by hand for the first notifications (each as often as it takes
    to make BURST), counted in ``burst``: a worker taking them holds some for a moment (one
    that keeps up with the orders holds none between two of them)."""
    from django.db import connection

    from notifications.models import Notification

    ids = list(Notification.objects.values_list("pk", flat=True)[:BURST])
    connection.close()  # this thread's, not left open for the next scenario's DROP
    for notification_id in (ids * BURST)[:BURST]:
        run.stack.send_deliver(notification_id)
        burst[notification_id] += 1


def _freeze_worker(run: ChaosRun, stop: threading.Event, burst: Counter) -> None:
    """SIGSTOP the worker's whole process group for FROZEN seconds, up to FREEZES times while
    orders are placed, each time right after a burst of wake-ups (``send_burst``): the
    worker holds some reserved when it stops; they outlive the visibility timeout and the
    broker hands them out again once it runs (SIGCONT)."""
    for _ in range(FREEZES):
        if stop.wait(2.0):
            return
        send_burst(run, burst)
        group = run.stack.pid("worker")
        os.killpg(group, signal.SIGSTOP)
        try:
            time.sleep(FROZEN)
        finally:
            os.killpg(group, signal.SIGCONT)


SCENARIOS = [
    Scenario(
        "2a",
        "Redis FLUSHALL mid-run and at the end",
        redis_flushed,
        redis_only="FLUSHALL empties a Redis broker; RabbitMQ's queues are not in Redis",
    ),
    Scenario(
        "2b",
        "Redis stopped, orders go on, restarted empty",
        redis_restarted,
        redis_only=(
            "the broker is not the stack's own Redis (a RabbitMQ restart is the simulated "
            "cluster's scenario, issue 13)"
        ),
    ),
    Scenario(
        "5",
        "broker redelivery + hand-made duplicates",
        redelivered,
        {
            "CELERY_VISIBILITY_TIMEOUT": "2",
            "NOTIFY_ATTEMPT_DEADLINE": "8",
            "NOTIFY_CLAIM_TIMEOUT": "20",
        },
        redis_only=(
            "it makes the broker redeliver with a 2 s visibility timeout, which RabbitMQ does "
            "not have (it redelivers what a closed connection held: scenarios 1 and 12)"
        ),
    ),
]
