"""Scenarios 13-18, 20 and 21: the faults only a network causes, on the simulated cluster
(``devstack.cluster``: web, worker1, worker2, beat, broker and db each a host of its own;
the receiver proxy on the harness's address). Each runs both worker hosts, places its orders
and, at half of them, injects its fault for ``outage`` seconds, then heals it:

- 13: worker1 partitioned from the database mid-delivery (its connections hang);
- 14: the broker SIGKILLed and restarted: Redis empty; a RabbitMQ node on its data;
- 15: PostgreSQL restarted (``pg_ctl restart -m fast``) mid-run;
- 16: worker2's clock three minutes ahead for the whole run (libfaketime);
- 17: worker1 partitioned from the broker;
- 18: worker1 partitioned from the receiver;
- 20: web (both gunicorns) partitioned from the database;
- 21: beat partitioned from the broker.

``throughput_scenarios`` are not faults: the delivery rate with one and two worker hosts.
"""

import contextlib
import math
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from urllib.parse import urlsplit

from devstack.broker import rabbitmq_probe_publish, rabbitmq_probe_take
from devstack.browser import Browser, DriveError
from devstack.proxy import FaultProxy
from devstack.settle import WaitTimeout, wait_until
from devstack.shoppers import HTTP_TIMEOUT, PlannedOrder, place, plan_orders

from ..figures import at, percentile, received_task_ids, receiver_counts, sending_now
from ..harness import DRIVE_TIMEOUT, ChaosRun, Scenario
from ..sampling import Sampler

TOOK = re.compile(r"Task (\S+)\[[^\]]+\] (?:succeeded|raised|retry)[^0-9]* in ([0-9.]+)s")

ORDER_TTL = 20  # seconds an order may stay unpaid in scenario 15
SKEW = 180  # seconds worker2's clock is ahead in scenario 16: inside the 5 min signature tolerance
PROBES = 20  # confirmed messages scenario 14 leaves in a quorum queue of its own on RabbitMQ
BROKER_LOST = "Connection to broker lost"  # a Celery worker's log, when its connection dies
# Scenario 20: the wallet page is probed every PROBE_INTERVAL seconds, each probe waiting at
# most PROBE_TIMEOUT (longer than the outage and the kernel's SYN back-off after it, so a
# request held by the partition is timed, not cut short); the page must answer again within
# RECOVERY seconds of the heal.
PROBE_INTERVAL = 0.5
PROBE_TIMEOUT = 90
RECOVERY = 60
# Scenario 21: WALLET_ORDERS orders are left unpaid just before the cut and expire after
# EXPIRY_TTL seconds, so they come due while beat is cut off (the small outage is 6 s); as
# many are paid just after the cut, and their notifications must be delivered before the
# heal (no sweeper needed). A periodic task beat sent just before the cut may still run
# during GRACE seconds after it. Once healed, every order that came due must be expired
# within CATCH_UP seconds.
EXPIRY_TTL = 5
WALLET_ORDERS = 3
GRACE = 2.0
CATCH_UP = 60.0


@dataclass(frozen=True)
class FaultWindow:
    """When a ``faulted_run``'s fault was in place and when healed (``time.time()``), and the
    failed attempts it caused."""

    began: float
    healed: float
    failed: int


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
    run: ChaosRun,
    *,
    inject: Callable,
    heal: Callable,
    seed: int,
    pages_fail: bool = False,
    watch: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    during: Callable = lambda: None,
) -> FaultWindow:
    """Orders placed; at half of them ``inject()``, then ``during()``, ``outage`` seconds
    after the fault was in place ``heal()``; then settle and the figures (failed attempts
    count as forced: the fault caused them). ``pages_fail``: the fault takes the pages down
    too (the database): their errors are noted, not failed. ``watch()`` is entered once the
    processes run and left when every order was placed."""
    from notifications.models import DeliveryAttempt

    run.receiver.latency = 0.3  # deliveries take a moment: some are in flight at the fault
    start_cluster(run)
    with watch():
        state = run.drive(plan_orders(run.sizes.orders, seed=seed))
        wait_until(lambda: state.progress() >= 0.5, timeout=DRIVE_TIMEOUT, what="half the orders")
        with contextlib.suppress(WaitTimeout):  # a fault with nothing in flight still counts
            wait_until(lambda: sending_now() > 0, timeout=10, interval=0.02)
        in_flight = sending_now()
        inject()
        began = time.time()
        during()
        time.sleep(max(0.0, began + run.sizes.outage - time.time()))
        heal()
        healed = time.time()
        state.wait(timeout=DRIVE_TIMEOUT)
    run.end_fault(max(healed, state.finished))
    run.settle()
    failed = DeliveryAttempt.objects.exclude(error="").exclude(error__isnull=True).count()
    run.figures(forced=failed)
    if pages_fail:
        first = f" (first: {state.errors[0]})" if state.errors else ""
        run.note(f"{len(state.errors)} page requests failed during the fault{first}")
    else:
        run.check_drive(state)
    run.note(
        f"{in_flight} attempts in flight when the fault began; {failed} attempts failed "
        "during the fault and were made again"
    )
    return FaultWindow(began=began, healed=healed, failed=failed)


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


def cut_off(
    run: ChaosRun,
    host: str,
    peer: str,
    *,
    seed: int,
    before: Callable = lambda: None,
    after: Callable = lambda: None,
    **options,
) -> FaultWindow:
    """``faulted_run`` with every packet ``host`` sends to ``peer`` dropped for the outage,
    ``before()`` just before the cut and ``after()`` just after the heal (``options`` go to
    ``faulted_run``)."""
    cluster = run.stack.cluster

    def inject() -> None:
        before()
        cluster.partition(host, peer)

    def heal() -> None:
        cluster.heal(host, peer)
        after()

    window = faulted_run(run, inject=inject, heal=heal, seed=seed, **options)
    run.note(f"{host} could not reach {peer} for {run.sizes.outage:.0f}s (packets dropped)")
    return window


def partition(run: ChaosRun, host: str, peer: str, seed: int) -> None:
    """``cut_off`` of a worker host; checks that a task of ``host``'s worker was held by the
    partition (ran for half the outage or more), or, cut off from the broker, that it took no
    more messages meanwhile than it could have been sent unasked (its prefetch: one per
    process) while the other worker took the new ones."""
    counts = {}
    failed = cut_off(
        run,
        host,
        peer,
        seed=seed,
        before=lambda: counts.update(cut=received(run)),
        after=lambda: counts.update(healed=received(run)),
    ).failed
    seconds, task = longest_task(run, host)
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


def web_partitioned_from_db(run: ChaosRun) -> None:
    """20. The web host (the public gunicorn and the payments API's) cannot reach the
    database mid-run: its requests hang (no error: the packets vanish), so pages, the
    payments API and accounts' notify API stall; attempts time out at their deadline and are
    retried. The wallet page is probed all along (``probe_page``): a probe during the cut
    must be held (or fail), and the page must answer again within RECOVERY seconds of the
    heal: no gunicorn thread is stuck for good. Orders whose payment page failed stay
    unpaid until they expire (ORDER_TTL)."""
    probes = Sampler(probe_page(run.stack.web_url), interval=PROBE_INTERVAL)
    window = cut_off(run, "web", "db", seed=38, pages_fail=True, watch=lambda: probes)
    _check_pages_recovered(run, probes.samples, window)


def probe_page(base_url: str) -> Callable[[], float | None]:
    """A read for a ``Sampler``: the wallet page as demo1 (it reads the session and the
    balance from the database), the seconds it took, None when it failed or took longer
    than PROBE_TIMEOUT. Logs in first while it has no session (not timed)."""
    browser = Browser(base_url=base_url, username="demo1", password="demo", timeout=PROBE_TIMEOUT)

    def probe() -> float | None:
        try:
            if "sessionid" not in browser.http.cookies:
                browser.login()
            began = time.monotonic()
            browser.request("GET", "/", expect=200)
        except DriveError:
            return None
        return time.monotonic() - began

    return probe


def _check_pages_recovered(run: ChaosRun, samples: list, window: FaultWindow) -> None:
    """From the probes (``(started, seconds or None)``): one in flight during the cut was
    held until the heal or failed, and the page answered again within RECOVERY s of the
    heal."""
    ended = [
        (start, start + (PROBE_TIMEOUT if seconds is None else seconds), seconds)
        for start, seconds in samples
    ]
    cut = [
        (start, end, seconds)
        for start, end, seconds in ended
        if start < window.healed and end > window.began
    ]
    held = [seconds for _, end, seconds in cut if seconds is None or end >= window.healed]
    run.check(
        "a page request in flight during the cut was held until the heal or failed",
        bool(held),
        f"{len(cut)} probes in flight during the cut, {len(held)} held or failed",
    )
    answered = [end for _, end, seconds in ended if seconds is not None and end > window.healed]
    after = min(answered, default=math.inf) - window.healed
    longest = max((end - start for start, end, _ in cut), default=0.0)
    run.check(
        f"the wallet page answered again within {RECOVERY}s of the heal",
        after <= RECOVERY,
        f"first answer {after:.1f}s after the heal; longest probe during the cut {longest:.1f}s",
    )
    run.note(
        f"wallet page probes: {len(cut)} in flight during the cut, the longest {longest:.1f}s "
        f"({run.sizes.outage:.0f}s cut); answered again {after:.1f}s after the heal"
    )


def beat_partitioned_from_broker(run: ChaosRun) -> None:
    """21. beat cannot reach the broker for the outage (many sweep and expiry intervals): it
    can send no periodic task. A paid order's delivery is published by the web host and its
    retries are the worker's own timers, so deliveries go on without beat; what needs beat
    waits: the WALLET_ORDERS orders left unpaid just before the cut come due during it and
    are expired only after the heal, once beat's sends get through again (checked against
    CATCH_UP). As many orders paid just after the cut are notified before the heal."""
    unpaid: list[str] = []
    paid: list[str] = []
    window = cut_off(
        run,
        "beat",
        "broker",
        seed=39,
        before=lambda: unpaid.extend(wallet_orders(run.stack.web_url, WALLET_ORDERS, None)),
        during=lambda: paid.extend(wallet_orders(run.stack.web_url, WALLET_ORDERS, "pay")),
    )
    _check_expiry_waited(run, window, unpaid)
    _check_deliveries_went_on(run, window, paid)


def wallet_orders(base_url: str, count: int, action: str | None) -> list[str]:
    """``count`` orders started at the wallet as demo1 and finished with ``action`` at the
    cashier ("pay", "decline", None: left unpaid); their tx_nos. Raises DriveError."""
    browser = Browser(base_url=base_url, username="demo1", password="demo", timeout=HTTP_TIMEOUT)
    browser.login()
    return [place(browser, PlannedOrder(number, "1.00", action)) for number in range(count)]


def _check_expiry_waited(run: ChaosRun, window: FaultWindow, unpaid: list[str]) -> None:
    """Of the ``unpaid`` orders (tx_nos), those that came due for expiry during the cut
    (after GRACE): none was expired before the heal (beat was cut off), and all within
    CATCH_UP s after it."""
    from payments.models import RechargeOrder

    ttl = timedelta(seconds=EXPIRY_TTL)
    due = [
        finished.timestamp() if finished else math.inf
        for created, finished in RechargeOrder.objects.filter(tx_no__in=unpaid).values_list(
            "created_at", "finished_at"
        )
        if at(window.began + GRACE) <= created + ttl < at(window.healed)
    ]
    early = [moment for moment in due if moment < window.healed]
    run.check(
        "orders came due while beat was cut off, none expired before the heal",
        due and not early,
        f"{len(due)} of {len(unpaid)} came due during the cut, {len(early)} expired before",
    )
    late = max(due, default=math.inf) - window.healed
    run.check(
        f"beat caught up: each of them expired within {CATCH_UP:.0f}s of the heal",
        late <= CATCH_UP,
        f"the last {late:.1f}s after the heal",
    )
    run.note(
        f"{len(due)} unpaid orders came due for expiry during the cut; expired once beat's "
        f"sends got through, the last {late:.1f}s after the heal"
    )


def _check_deliveries_went_on(run: ChaosRun, window: FaultWindow, paid: list[str]) -> None:
    """The ``paid`` orders' (tx_nos, paid during the cut) notifications were delivered before
    the heal: without beat. Notes the delays of every notification made during the cut."""
    from notifications.models import Notification

    delivered = Notification.objects.filter(
        subject__in=paid, delivered_at__lt=at(window.healed)
    ).count()
    run.check(
        "orders paid during the cut were notified before the heal (no beat needed)",
        delivered == len(paid) > 0,
        f"{delivered} of {len(paid)} delivered before the heal",
    )
    made = Notification.objects.filter(
        created_at__gte=at(window.began), created_at__lt=at(window.healed)
    ).values_list("created_at", "delivered_at")
    delays = sorted(
        (done - created).total_seconds() if done else math.inf for created, done in made
    )
    run.note(
        f"{len(delays)} notifications made during the cut: commit → delivered p50 "
        f"{percentile(delays, 0.5):.2f}s, p95 {percentile(delays, 0.95):.2f}s, "
        f"max {percentile(delays, 1.0):.2f}s"
    )


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
    Scenario("20", "web host partitioned from the database", web_partitioned_from_db,
             env={"PAYMENTS_ORDER_TTL": str(ORDER_TTL)}, network=True),
    Scenario("21", "beat host partitioned from the broker", beat_partitioned_from_broker,
             env={"PAYMENTS_ORDER_TTL": str(EXPIRY_TTL)}, network=True),
]  # fmt: skip


def throughput(run: ChaosRun, *, hosts: tuple[str, ...], endpoints: int) -> None:
    """Not a fault: the orders are placed with no worker running, so every notification is
    due at once; they are spread over ``endpoints`` receivers (``spread``); then a worker
    starts on each of ``hosts`` and the time from their start until everything is delivered
    and the audit is clean is the delivery time (every receiver answers in 50 ms): its
    ``settle_seconds``."""
    from notifications.models import Notification

    run.receiver.latency = 0.05
    run.stack.start("web", "payments", "beat")
    state = run.drive(plan_orders(run.sizes.orders, seed=40)).wait(timeout=DRIVE_TIMEOUT)
    due = Notification.objects.count()
    with contextlib.ExitStack() as stack:
        receivers = [run.receiver] + [
            stack.enter_context(_receiver_like(run.receiver)) for _ in range(endpoints - 1)
        ]
        shares = spread(receivers)
        for key in hosts:
            run.stack.launch("worker", key=key)
        for key in hosts:
            run.stack.wait_ready("worker", key=key)
        run.end_fault()
        run.settle()
    run.figures()
    run.check_drive(state)
    for number, receiver in enumerate(receivers[1:], start=2):
        name, ok, detail = receiver_counts(receiver, exact=False)
        run.check(f"endpoint {number}'s {name}", ok, detail)
    got = [len(receiver.requests_per_webhook_id()) for receiver in receivers]
    run.check(
        f"each of the {endpoints} endpoints received its share",
        got == shares,
        f"shares {shares}, received {got}",
    )
    run.note(f"{due} notifications due at once to {endpoints} endpoint(s), {len(hosts)} host(s)")
    run.note(f"failed attempts by kind: {dict(failed_attempt_kinds()) or 'none'}")


def failed_attempt_kinds() -> Counter:
    """``{kind: failed attempts}``, the kind an error up to its first colon ("timeout after
    3 s", "HTTP 502", "connection error")."""
    from notifications.models import DeliveryAttempt

    errors = DeliveryAttempt.objects.exclude(error="").values_list("error", flat=True)
    return Counter(error.split(":")[0] for error in errors)


def _receiver_like(receiver: FaultProxy) -> FaultProxy:
    """Another receiver proxy on ``receiver``'s address (a port, so an origin, of its own)
    forwarding to the same accounts with the same latency; started by ``with``."""
    return FaultProxy(
        host=receiver.host,
        upstream_host=receiver.upstream_host,
        upstream=receiver.upstream,
        latency=receiver.latency,
    )


def spread(receivers: list[FaultProxy]) -> list[int]:
    """Point the notifications, in the order they were made, at ``receivers`` in turn: the
    same path on each receiver's origin, each origin an endpoint of its own (the product's
    ``endpoint_id_for``), as if they were as many merchants' servers. Only before any worker
    runs (nothing claimed). Every notification here goes to accounts' one notify URL (the
    orders come from the pages). Returns how many each receiver was given."""
    from notifications.endpoints import endpoint_id_for
    from notifications.models import Notification

    made = list(Notification.objects.order_by("created_at").values_list("id", flat=True))
    first = Notification.objects.order_by("created_at").first()
    path = urlsplit(first.target_url).path if first else ""
    shares = []
    for index, receiver in enumerate(receivers):
        ids = made[index :: len(receivers)]
        url = receiver.url + path
        endpoint = endpoint_id_for(sender_key=first.sender_key, url=url) if ids else None
        Notification.objects.filter(pk__in=ids).update(target_url=url, endpoint_id=endpoint)
        shares.append(len(ids))
    return shares


def throughput_scenarios(endpoints: int = 1) -> list[Scenario]:
    """T1 and T2 (keys ``T1-<endpoints>``): the throughput with one worker host, then two,
    to ``endpoints`` endpoints."""
    return [
        Scenario(
            f"{key}-{endpoints}",
            f"throughput, {label}, {endpoints} endpoint{'s' if endpoints > 1 else ''}",
            partial(throughput, hosts=hosts, endpoints=endpoints),
            network=True,
        )
        for key, label, hosts in (
            ("T1", "one worker host", ("worker1",)),
            ("T2", "two worker hosts", ("worker1", "worker2")),
        )
    ]
