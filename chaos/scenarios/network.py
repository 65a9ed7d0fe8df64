"""Scenarios 13-18: the faults only a network causes, on the simulated cluster
(``devstack.cluster``: web, worker1, worker2, beat, broker and db each a host of its own;
the receiver proxy on the harness's address). Each runs both worker hosts, places its orders
and, at half of them, injects its fault for ``outage`` seconds, then heals it:

- 13: worker1 partitioned from the database mid-delivery (its connections hang);
- 14: the broker SIGKILLed and restarted: Redis empty; a RabbitMQ node on its data;
- 15: PostgreSQL restarted (``pg_ctl restart -m fast``) mid-run;
- 16: worker2's clock three minutes ahead for the whole run (libfaketime);
- 17: worker1 partitioned from the broker;
- 18: worker1 partitioned from the receiver.
"""

import contextlib
import re
import subprocess
import time
from collections.abc import Callable

from devstack.broker import rabbitmq_probe_publish, rabbitmq_probe_take
from devstack.settle import WaitTimeout, wait_until
from devstack.shoppers import plan_orders

from ..figures import received_task_ids, sending_now
from ..harness import DRIVE_TIMEOUT, ChaosRun, Scenario

TOOK = re.compile(r"Task (\S+)\[[^\]]+\] (?:succeeded|raised|retry)[^0-9]* in ([0-9.]+)s")

ORDER_TTL = 20  # seconds an order may stay unpaid in scenario 15
SKEW = 180  # seconds worker2's clock is ahead in scenario 16: inside the 5 min signature tolerance
PROBES = 20  # confirmed messages scenario 14 leaves in a quorum queue of its own on RabbitMQ
BROKER_LOST = "Connection to broker lost"  # a Celery worker's log, when its connection dies


def start_cluster(run: ChaosRun) -> None:
    """web and payments on ``web``, a worker on each worker host, beat on ``beat``."""
    began = time.monotonic()
    stack = run.stack
    stack.start("web", "payments")
    for key in ("worker1", "worker2"):
        stack.launch("worker", key=key)
        stack.wait_ready("worker", key=key)
    stack.start("beat")
    run.say(f"cluster processes started in {time.monotonic() - began:.1f}s")


def faulted_run(
    run: ChaosRun, *, inject: Callable, heal: Callable, seed: int, pages_fail: bool = False
) -> int:
    """Orders placed; at half of them ``inject()``, ``outage`` seconds later ``heal()``;
    then settle and the figures (failed attempts count as forced: the fault caused them).
    ``pages_fail``: the fault takes the pages down too (the database): their errors are
    noted, not failed. Returns the failed attempts."""
    from notifications.models import DeliveryAttempt

    run.receiver.latency = 0.3  # deliveries take a moment: some are in flight at the fault
    start_cluster(run)
    state = run.drive(plan_orders(run.sizes.orders, seed=seed))
    wait_until(lambda: state.progress() >= 0.5, timeout=DRIVE_TIMEOUT, what="half the orders")
    with contextlib.suppress(WaitTimeout):  # a fault with nothing in flight still counts
        wait_until(lambda: sending_now() > 0, timeout=10, interval=0.02)
    in_flight = sending_now()
    inject()
    time.sleep(run.sizes.outage)
    heal()
    healed = time.time()
    state.wait(timeout=DRIVE_TIMEOUT)
    run.end_fault(max(healed, state.finished))
    run.settle()
    failed = DeliveryAttempt.objects.exclude(error="").exclude(error__isnull=True).count()
    run.figures(forced=failed)
    if pages_fail:
        run.note(f"{len(state.errors)} page requests failed during the fault (500)")
    else:
        run.check_drive(state)
    run.note(
        f"{in_flight} attempts in flight when the fault began; {failed} attempts failed "
        "during the fault and were made again"
    )
    return failed


def longest_task(run: ChaosRun, host: str) -> tuple[float, str]:
    """The longest task ``host``'s worker ran, as (seconds, task name), from its log."""
    text = (run.log_dir / f"{host}.log").read_text(errors="replace")
    found = [(float(seconds), name) for name, seconds in TOOK.findall(text)]
    return max(found, default=(0.0, ""))


def received(run: ChaosRun) -> dict[str, int]:
    """``{worker host: deliver messages its worker received so far}``, from the logs."""
    return {
        host: len(received_task_ids(run.log_dir / f"{host}.log")) for host in ("worker1", "worker2")
    }


def partition(run: ChaosRun, host: str, peer: str, seed: int) -> None:
    """``faulted_run`` with ``host`` cut off from ``peer``; checks that a task of ``host``'s
    worker was held by the partition (ran for half the outage or more), or, cut off from the
    broker, that it took no more messages meanwhile than it could have been sent unasked
    (its prefetch: one per process) while the other worker took the new ones."""
    cluster = run.stack.cluster
    counts = {}

    def inject() -> None:
        counts["cut"] = received(run)
        cluster.partition(host, peer)

    def heal() -> None:
        cluster.heal(host, peer)
        counts["healed"] = received(run)

    failed = faulted_run(run, inject=inject, heal=heal, seed=seed)
    seconds, task = longest_task(run, host)
    run.note(f"{host} could not reach {peer} for {run.sizes.outage:.0f}s (packets dropped)")
    if peer == "harness":  # its requests time out (connect timeout): failed attempts
        run.check(f"attempts from {host} failed while cut off", failed > 0, f"{failed} failed")
    elif peer == "db":  # cut off from the broker, a worker runs on with what it holds
        run.check(
            f"the partition held a task on {host}",
            seconds >= run.sizes.outage / 2,
            f"longest: {task} {seconds:.1f}s",
        )
    else:
        took = {key: counts["healed"][key] - counts["cut"][key] for key in counts["cut"]}
        prefetch = int(run.env["WORKER_CONCURRENCY"])
        others = sum(n for key, n in took.items() if key != host)
        run.check(
            f"{host} took no more than its prefetch while cut off, the other worker the rest",
            took[host] <= prefetch and others > 0,
            f"deliver messages received while cut off: {took}; prefetch {prefetch}",
        )
        lost = BROKER_LOST in (run.log_dir / f"{host}.log").read_text(errors="replace")
        run.note(f"{host}'s broker connection {'was' if lost else 'was not'} given up on")


def worker_partitioned_from_db(run: ChaosRun) -> None:
    """13. worker1 is cut off from the database with deliveries in flight: its queries hang
    (no error: the packets vanish) until the partition heals; the sweeper on the other host
    releases its stale claims after NOTIFY_CLAIM_TIMEOUT and worker2 delivers them."""
    partition(run, "worker1", "db", seed=31)


def broker_restarted(run: ChaosRun) -> None:
    """14. The broker host's broker is SIGKILLed mid-run and started again: Redis empty (the
    queued and unacknowledged messages are gone); RabbitMQ on its data directory
    (``rabbitmq_restarted``). The workers and beat reconnect, the sweeper re-sends every due
    row. Checks that both workers lost their broker connection."""
    cluster = run.stack.cluster
    if run.stack.broker_is_redis:
        faulted_run(run, inject=cluster.stop_redis, heal=cluster.start_redis, seed=32)
        run.note("Redis (broker and cache) on the broker host killed, restarted empty")
    else:
        rabbitmq_restarted(run)
    cut = [
        host
        for host in ("worker1", "worker2")
        if BROKER_LOST in (run.log_dir / f"{host}.log").read_text(errors="replace")
    ]
    run.check("both workers lost their broker connection", len(cut) == 2, f"lost: {cut}")


def rabbitmq_restarted(run: ChaosRun) -> None:
    """14 on RabbitMQ: the node is SIGKILLed and started on the data directory it had, as a
    host's crash and reboot. A quorum queue of the run's own, given PROBES confirmed
    messages before the orders, must hold them all after the restart (what a quorum queue
    confirmed survives); the namespace's queues' backlog as rabbitmqctl saw it before the
    kill and once the node was back is noted (its counts lag a few seconds): what the
    workers held unacknowledged went back to their queues, redelivered."""
    stack, cluster = run.stack, run.stack.cluster
    probe = f"{stack.namespace}.probe"
    rabbitmq_probe_publish(url=stack.broker_url, queue=probe, count=PROBES)
    seen = {}

    def inject() -> None:
        seen["before"] = stack.broker_backlog("notifications", "periodic")
        cluster.stop_rabbitmq()

    def heal() -> None:
        began = time.monotonic()
        cluster.start_rabbitmq()
        seen["started"] = time.monotonic() - began
        seen["after"] = stack.broker_backlog("notifications", "periodic")

    faulted_run(run, inject=inject, heal=heal, seed=32)
    kept = rabbitmq_probe_take(url=stack.broker_url, queue=probe)
    run.check(
        "a quorum queue's confirmed messages survived the SIGKILL",
        kept == PROBES,
        f"{kept} of {PROBES}",
    )
    run.note(
        f"RabbitMQ node on the broker host SIGKILLed, started again on its data directory "
        f"(back {seen['started']:.1f}s after the start began); rabbitmqctl, whose quorum queue "
        f"counts lag by seconds, saw the namespace's queues hold "
        f"{seen['before']} before the kill and {seen['after']} once it was back"
    )


def postgres_restarted(run: ChaosRun) -> None:
    """15. PostgreSQL on the db host is restarted (fast shutdown: every connection cut) in
    the middle of the orders: pages and workers fail while it is down, then reconnect. An
    order whose payment page failed stays pending until it expires (ORDER_TTL), and its
    ``recharge.failed`` notification closes it at accounts."""
    from django.db import connections

    cluster = run.stack.cluster

    def restart() -> None:
        cluster.restart_postgres()
        connections.close_all()  # the harness's own connection was cut too

    from payments.models import RechargeOrder

    faulted_run(run, inject=restart, heal=lambda: None, seed=33, pages_fail=True)
    expired = RechargeOrder.objects.filter(failure_reason="expired").count()
    run.note(
        "PostgreSQL restarted with pg_ctl restart -m fast while orders were paid; "
        f"{expired} orders left unpaid by a failed page expired (PAYMENTS_ORDER_TTL "
        f"{ORDER_TTL}s) and accounts was told"
    )


def clock_skewed(run: ChaosRun) -> None:
    """16. worker2's clock runs SKEW seconds ahead (libfaketime) for the whole run: its
    signatures carry a future timestamp accounts still accepts (5 min tolerance), and every
    claim and schedule is the database's time, so worker1's claims are not released early."""
    faulted_run(run, inject=lambda: None, heal=lambda: None, seed=34)
    run.check(
        "no attempt beyond one per notification (no claim released early)",
        run.outcome.attempts == run.outcome.notifications,
        f"{run.outcome.attempts} attempts for {run.outcome.notifications} notifications",
    )
    clock = _worker_clock(run, "worker2")
    run.check(
        "worker2's clock was skewed",
        clock is not None and SKEW - 30 < clock < SKEW + 30,
        f"worker2 - harness = {clock}s",
    )
    run.note(f"worker2's clock {clock:.0f}s ahead of the others" if clock else "no clock read")


def _worker_clock(run: ChaosRun, host: str) -> float | None:
    """Seconds ``host``'s processes' clock is ahead of this one's, from a ``date`` run there
    under the same libfaketime settings (None when it could not be read)."""
    stack = run.stack
    command = stack.command("worker", host).split(" celery ")[0] + " date +%s"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=10)
    try:
        return float(done.stdout.strip()) - time.time()
    except ValueError:
        return None


def worker_partitioned_from_broker(run: ChaosRun) -> None:
    """17. worker1 is cut off from the broker: the messages it holds unacknowledged stay with
    the broker (Redis: redelivered after the visibility timeout; RabbitMQ: until the
    connection's heartbeats, 30 s, give it up, so not within a shorter cut) and worker2
    takes everything new."""
    partition(run, "worker1", "broker", seed=35)


def worker_partitioned_from_receiver(run: ChaosRun) -> None:
    """18. worker1 cannot reach the receiver: its attempts time out (connect timeout) and
    are retried on the schedule, by whichever worker takes them."""
    partition(run, "worker1", "harness", seed=36)


SCENARIOS = [
    Scenario("13", "worker host partitioned from the database", worker_partitioned_from_db,
             network=True),
    Scenario("14", "broker host's broker SIGKILLed, restarted", broker_restarted,
             network=True),
    Scenario("15", "PostgreSQL restarted mid-run", postgres_restarted,
             env={"PAYMENTS_ORDER_TTL": str(ORDER_TTL)}, network=True),
    Scenario("16", "a worker host's clock 3 min ahead", clock_skewed,
             env={"CLUSTER_FAKETIME_WORKER2": f"+{SKEW}"}, network=True),
    Scenario("17", "worker host partitioned from the broker", worker_partitioned_from_broker,
             network=True),
    Scenario("18", "worker host partitioned from the receiver",
             worker_partitioned_from_receiver, network=True),
]  # fmt: skip


def throughput(run: ChaosRun, hosts: tuple[str, ...]) -> None:
    """Not a fault: the orders are placed with no worker running, so every notification is
    due at once; then a worker starts on each of ``hosts`` and the time from their start
    until everything is delivered and the audit is clean is the delivery time (the receiver
    answers in 50 ms): its ``settle_seconds``."""
    from notifications.models import Notification

    run.receiver.latency = 0.05
    run.stack.start("web", "payments", "beat")
    state = run.drive(plan_orders(run.sizes.orders, seed=40)).wait(timeout=DRIVE_TIMEOUT)
    due = Notification.objects.count()
    for key in hosts:
        run.stack.launch("worker", key=key)
    for key in hosts:
        run.stack.wait_ready("worker", key=key)
    run.end_fault()
    run.settle()
    run.figures()
    run.check_drive(state)
    run.note(f"{due} notifications due at once, {len(hosts)} worker host(s)")


THROUGHPUT = [
    Scenario("T1", "throughput, one worker host", lambda run: throughput(run, ("worker1",)),
             network=True),
    Scenario("T2", "throughput, two worker hosts",
             lambda run: throughput(run, ("worker1", "worker2")), network=True),
]  # fmt: skip
