"""Scenario 19: scheme 1, accounts receiving its notifications from the broker
(``ACCOUNTS_NOTIFY_TRANSPORT=queue``, notifications/queues.py) through two subscribers, while
a subscriber is SIGKILLed holding messages, every subscriber is down for an outage, and the
worker is SIGKILLed with publications awaiting their acknowledgements."""

import contextlib
import json
import time

from devstack.broker import rabbitmq_backlog
from devstack.settle import WaitTimeout, wait_until
from devstack.shoppers import Drive, plan_orders
from notifications.retry import QUEUE_LADDER, parse_duration

from .. import subscriber
from ..figures import at
from ..harness import DRIVE_TIMEOUT, ChaosRun, Scenario

SUBSCRIBERS = ("subscriber-a", "subscriber-b")
# The seeds' scheme-1 ladder (1m, 5m, 10m, ...) at a twentieth of its pace: 3 s, 15 s, 30 s,
# ... A publication unacknowledged for 3 s is published again.
QUEUE_PACE = 0.05
ACK_PAUSE = 2.0  # seconds the subscribers acknowledge into the queue while no worker reads it
# rabbitmqctl's counts of a quorum queue lag by seconds (scenario 14 says so too): seconds to
# read the acknowledgements' queue again while it shows none.
BROKER_COUNTS_LAG = 10.0
REDELIVERY_TIMEOUT = 60.0  # seconds for the broker to hand a dead subscriber's messages on
REPUBLISH_TIMEOUT = 60.0  # seconds the outage may last beyond ``outage`` for a publication


def queue_transport(run: ChaosRun) -> None:
    """19. Two subscribers consume accounts' queue (their handler holds each message 0.1 s
    after applying it, before the acknowledgement: ``chaos.subscriber``) while orders are
    placed, half of them first. At a quarter one subscriber's group is SIGKILLed with a
    message in hand: the broker hands its unacknowledged messages to the other (RabbitMQ at
    once, Redis after its visibility timeout). Once the first half is placed the other is
    stopped too, for ``outage`` seconds (longer, if need be, until a notification is
    published again), as the second half starts: the notifier publishes again on its
    ladder. Both start again; once acknowledgements are recorded again the
    worker's group is SIGKILLed, the subscribers acknowledge for ``ACK_PAUSE`` seconds with
    nobody recording, and a new worker starts."""
    run.start("web", "payments", "worker", "beat")
    _start_subscribers(run, *SUBSCRIBERS)
    half = run.sizes.orders // 2
    first = run.drive(plan_orders(half, seed=19))
    wait_until(
        lambda: first.progress() >= 0.5, timeout=DRIVE_TIMEOUT, what="a quarter of the orders"
    )
    _subscriber_killed(run)
    first.wait(timeout=DRIVE_TIMEOUT)
    second, began, ended = _outage(run, plan_orders(run.sizes.orders - half, seed=20))
    awaiting, acks_waiting, worker_back = _kill_worker_awaiting_acks(run, since=ended)
    second.wait(timeout=DRIVE_TIMEOUT)
    run.end_fault(max(worker_back, second.finished))
    run.settle()
    republished = _republished(began, ended)
    run.figures(forced=republished, proxied=False)
    run.check_drive(first, second)
    run.check(
        "publications made again while no subscriber ran",
        republished > 0,
        f"{republished} publications with attempt number 2 or more during the outage",
    )
    _check_acks(run, awaiting=awaiting, acks_waiting=acks_waiting)
    run.note(
        f"{ended - began:.1f}s with no subscriber: {republished} publications made again "
        "meanwhile, until both consumed again (the minimum counts them); the other attempts "
        "beyond the minimum are attempts made again outside the outage: no acknowledgement "
        "recorded within the ladder's step (subscribers catching up, the worker dead), or "
        "cut off by the worker kill"
    )


def _start_subscribers(run: ChaosRun, *keys: str) -> None:
    """Start the Procfile's ``subscriber`` as each of ``keys`` with ``chaos.subscriber``'s
    handler (argparse keeps the last ``--handler``: the one appended to the line), and wait
    until each is connected to the broker (a log line more than before: a restarted one
    appends to its log)."""
    logs = {key: run.log_dir / f"{key}.log" for key in keys}
    before = {key: _connected(log) for key, log in logs.items()}
    for key in keys:
        run.stack.launch("subscriber", key=key, args="--handler chaos.subscriber.consume")
    for key, log in logs.items():
        wait_until(
            lambda key=key, log=log: _connected(log) > before[key],
            timeout=60,
            what=f"{key} connected",
            stack=run.stack,
        )
    run.say(f"started {', '.join(keys)}")


def _connected(log) -> int:
    """How many times a subscriber's log says it connected to the broker (kombu's
    ConsumerMixin, as it starts consuming)."""
    try:
        return log.read_text(errors="replace").count("Connected to ")
    except OSError:  # not started yet
        return 0


def _subscriber_killed(run: ChaosRun) -> None:
    """SIGKILL the first subscriber's group once it holds a message (or after 30 s
    regardless), then wait for the broker to hand what it held to the other; checks that
    both happened."""
    victim, other = (run.log_dir / f"{key}.log" for key in SUBSCRIBERS)
    with contextlib.suppress(WaitTimeout):  # a kill with nothing in hand fails the check
        wait_until(lambda: subscriber.in_hand(victim), timeout=30, interval=0.01)
    run.stack.kill(SUBSCRIBERS[0])
    killed = time.monotonic()
    held = subscriber.in_hand(victim)
    run.say(f"SIGKILLed {SUBSCRIBERS[0]} holding {len(held)} message(s)")
    with contextlib.suppress(WaitTimeout):  # the check says what did not arrive
        wait_until(
            lambda: held <= set(subscriber.taken(other)),
            timeout=REDELIVERY_TIMEOUT,
            what="the dead subscriber's messages redelivered",
        )
    redelivered = held & set(subscriber.taken(other))
    run.check(
        "the SIGKILLed subscriber held messages, each handed to the other subscriber",
        held and redelivered == held,
        f"held {len(held)}, redelivered {len(redelivered)} within {time.monotonic() - killed:.1f}s",
    )


def _outage(run: ChaosRun, orders: list) -> tuple[Drive, float, float]:
    """Stop the last subscriber up, place ``orders`` (in the background) and after
    ``outage`` seconds, or once a notification was published again if none was by then (at
    most ``REPUBLISH_TIMEOUT`` more: on a loaded machine the orders come slowly), start both
    subscribers again. Returns (the drive, the outage's start and end ``time.time()``: from
    the stop until both consume again)."""
    run.stack.stop(SUBSCRIBERS[1])
    began = time.time()
    run.say("no subscriber")
    drive = run.drive(orders)
    time.sleep(run.sizes.outage)
    with contextlib.suppress(WaitTimeout):  # none published again fails the check
        wait_until(lambda: _republished(began, time.time()), timeout=REPUBLISH_TIMEOUT)
    _start_subscribers(run, *SUBSCRIBERS)
    return drive, began, time.time()


def _republished(began: float, ended: float) -> int:
    """Publications made again (attempt 2 or more) between two ``time.time()``."""
    from notifications.models import DeliveryAttempt

    return DeliveryAttempt.objects.filter(
        number__gt=1, started_at__range=(at(began), at(ended))
    ).count()


def _kill_worker_awaiting_acks(run: ChaosRun, *, since: float) -> tuple[dict, int, float]:
    """Once a notification is delivered after ``since`` (acknowledgements recorded again),
    SIGKILL the worker's group, let the subscribers acknowledge for ``ACK_PAUSE`` seconds
    and start a new worker. Returns ({notification id: attempts made} of those awaiting an
    acknowledgement at the kill, acknowledgements queued for the new worker, when it
    started)."""
    from notifications.models import Notification

    wait_until(
        lambda: Notification.objects.filter(delivered_at__gt=at(since)).exists(),
        timeout=120,
        what="acknowledgements recorded after the outage",
        stack=run.stack,
    )
    run.stack.kill("worker")
    awaiting = dict(
        Notification.objects.filter(
            state__in=(Notification.State.PENDING, Notification.State.SENDING),
            attempt_count__gte=1,
        ).values_list("id", "attempt_count")
    )
    run.say(f"SIGKILLed the worker group with {len(awaiting)} publications unacknowledged")
    time.sleep(ACK_PAUSE)
    acks_waiting = _acks_backlog(run.stack)
    # No worker runs yet, so nothing takes acknowledgements out meanwhile: reading again can
    # only find ones already queued (on RabbitMQ, counted late), never make a wrong count.
    lag_ends = time.monotonic() + BROKER_COUNTS_LAG
    while awaiting and not acks_waiting and time.monotonic() < lag_ends:
        time.sleep(0.5)
        acks_waiting = _acks_backlog(run.stack)
    run.start("worker")
    return awaiting, acks_waiting, time.time()


def _acks_backlog(stack) -> int:
    """Acknowledgements in the acknowledgements' queue (``notifications.queues.acks_queue``),
    waiting or delivered to a consumer and not yet acked (a dead worker's, until the broker
    takes them back). On Redis, kombu's ``unacked`` hash holds every queue's: each entry is
    ``[message, exchange, routing key]``, and the queue's routing key is its name."""
    name = "notify.acks"
    if not stack.broker_is_redis:  # on RabbitMQ the product prefixes it with the namespace
        backlog = rabbitmq_backlog(
            url=stack.broker_url, namespace=stack.namespace, queues=(f"{stack.namespace}.{name}",)
        )
        return backlog["queued"] + backlog["unacked"]
    with stack.redis() as client:
        queued = client.llen(stack.broker_key(name))
        entries = client.hvals(stack.broker_key("unacked"))
    return queued + sum(1 for entry in entries if json.loads(entry)[2] == name)


def _acknowledged_before(awaiting: dict) -> int:
    """How many of ``awaiting`` ({notification id: attempts made at the kill}) have a
    publication made before the kill acknowledged: recorded by the new worker."""
    from notifications.models import DeliveryAttempt

    acknowledged = DeliveryAttempt.objects.filter(
        notification_id__in=awaiting, succeeded=True
    ).values_list("notification_id", "number")
    return len({pk for pk, number in acknowledged if number <= awaiting[pk]})


def _check_acks(run: ChaosRun, *, awaiting: dict, acks_waiting: int) -> None:
    """The worker kill's checks (see ``_kill_worker_awaiting_acks``), once settled."""
    late = _acknowledged_before(awaiting)
    run.check(
        "the worker died with publications awaiting acknowledgement",
        len(awaiting) > 0 and acks_waiting > 0,
        f"{len(awaiting)} awaiting, {acks_waiting} acknowledgements queued for the new worker",
    )
    run.check(
        "the new worker recorded acknowledgements of publications made before the kill",
        late > 0,
        f"{late} of {len(awaiting)} with a publication made before the kill acknowledged",
    )


SCENARIOS = [
    Scenario(
        "19",
        "queue transport: subscriber SIGKILLed, all down, worker SIGKILLed",
        queue_transport,
        {
            "ACCOUNTS_NOTIFY_TRANSPORT": "queue",
            "NOTIFY_QUEUE_RETRY_SCHEDULE": ",".join(
                f"{parse_duration(step) * QUEUE_PACE:g}s" for step in QUEUE_LADDER.split(",")
            ),
            # Redis gives a dead consumer's unacknowledged messages to another only after
            # the visibility timeout (an hour by default): 10 s, far above the 1.6 s a
            # subscriber holds its 16 prefetched messages (chaos.subscriber.LATENCY each).
            # RabbitMQ does so at once.
            "CELERY_VISIBILITY_TIMEOUT": "10",
        },
    ),
]
