"""Scenario 19: scheme 1, accounts receiving its notifications from the broker
(``ACCOUNTS_NOTIFY_TRANSPORT=queue``, notifications/queues.py) through two subscribers, while
a subscriber is SIGKILLed holding messages, every subscriber is down for an outage, and the
worker is SIGKILLed with publications awaiting their acknowledgements."""

import contextlib
import json
import time

from devstack.broker import rabbitmq_backlog
from devstack.settle import WaitTimeout, wait_until
from devstack.shoppers import plan_orders
from notifications.retry import QUEUE_LADDER, parse_duration

from .. import subscriber
from ..figures import at
from ..harness import DRIVE_TIMEOUT, ChaosRun, Scenario

SUBSCRIBERS = ("subscriber-a", "subscriber-b")
# The seeds' scheme-1 ladder (1m, 5m, 10m, ...) at a twentieth of its pace: 3 s, 15 s, 30 s,
# ... A publication unacknowledged for 3 s is published again.
QUEUE_PACE = 0.05
ACK_PAUSE = 2.0  # seconds the subscribers acknowledge into the queue while no worker reads it
REDELIVERY_TIMEOUT = 60.0  # seconds for the broker to hand a dead subscriber's messages on


def queue_transport(run: ChaosRun) -> None:
    """19. Two subscribers consume accounts' queue (their handler holds each message 0.1 s
    after applying it, before the acknowledgement: ``chaos.subscriber``) while orders are
    placed. At a quarter of the orders one subscriber's group is SIGKILLed with a message in
    hand: the broker hands its unacknowledged messages to the other (RabbitMQ at once, Redis
    after its visibility timeout). At half, the other is stopped too, for ``outage``
    seconds: the notifier publishes again on its ladder. Both start again; once
    acknowledgements are recorded again the worker's group is SIGKILLed, the subscribers
    acknowledge for ``ACK_PAUSE`` seconds with nobody recording, and a new worker starts."""
    from notifications.models import DeliveryAttempt

    sizes = run.sizes
    run.start("web", "payments", "worker", "beat")
    _start_subscribers(run, *SUBSCRIBERS)
    state = run.drive(plan_orders(sizes.orders, seed=19))
    victim, other = (run.log_dir / f"{key}.log" for key in SUBSCRIBERS)
    wait_until(lambda: state.progress() >= 0.25, timeout=120, what="a quarter of the orders")
    held = _kill_holding(run, SUBSCRIBERS[0], victim)
    with contextlib.suppress(WaitTimeout):  # the check below says what did not arrive
        wait_until(
            lambda: held <= set(subscriber.taken(other)),
            timeout=REDELIVERY_TIMEOUT,
            what="the dead subscriber's messages redelivered",
        )
    redelivered = held & set(subscriber.taken(other))
    wait_until(lambda: state.progress() >= 0.5, timeout=120, what="half the orders")
    outage = _outage(run, SUBSCRIBERS[1])
    awaiting, acks_waiting, worker_back = _kill_worker_awaiting_acks(run, since=outage[1])
    state.wait(timeout=DRIVE_TIMEOUT)
    run.end_fault(max(worker_back, state.finished))
    run.settle()
    republished = DeliveryAttempt.objects.filter(
        number__gt=1, started_at__range=(at(outage[0]), at(outage[1]))
    ).count()
    run.figures(forced=republished, proxied=False)
    run.check_drive(state)
    _check_faults(run, held=held, redelivered=redelivered, republished=republished)
    late = _acknowledged_before(awaiting)
    run.check(
        "the worker died with publications awaiting acknowledgement",
        len(awaiting) > 0 and acks_waiting > 0,
        f"{len(awaiting)} awaiting, {acks_waiting} acknowledgements queued for the new worker",
    )
    run.check(
        "the new worker recorded acknowledgements of publications made before the kill",
        late > 0,
        f"{late} of {len(awaiting)} delivered by a publication made before the kill",
    )
    run.note(
        f"subscriber SIGKILLed holding {len(held)} message(s), {len(redelivered)} of them "
        f"handed to the other subscriber; {sizes.outage:g}s with no subscriber: {republished} "
        f"publications made again meanwhile (the minimum counts them); worker SIGKILLed with "
        f"{len(awaiting)} publications awaiting acknowledgement, {acks_waiting} "
        f"acknowledgements waiting for the new worker, {late} notifications delivered by a "
        "publication made before the kill; the other attempts beyond the minimum are "
        "publications made again because their acknowledgement came after the ladder's step"
    )


def _start_subscribers(run: ChaosRun, *keys: str) -> None:
    """Start the Procfile's ``subscriber`` as each of ``keys`` with ``chaos.subscriber``'s
    handler (argparse keeps the last ``--handler``: the one appended to the line), and wait
    until each consumes."""
    for key in keys:
        run.stack.launch("subscriber", key=key, args="--handler chaos.subscriber.consume")
    for key in keys:
        log = run.log_dir / f"{key}.log"
        wait_until(
            lambda log=log: "consuming queue://" in log.read_text(errors="replace"),
            timeout=60,
            what=f"{key} consuming",
            stack=run.stack,
        )
    run.say(f"started {', '.join(keys)}")


def _kill_holding(run: ChaosRun, key: str, log) -> set:
    """SIGKILL ``key``'s group once it holds a message (or after 30 s regardless); returns
    the messages it held (``chaos.subscriber.in_hand``)."""
    with contextlib.suppress(WaitTimeout):  # a kill with nothing in hand is reported, failed
        wait_until(lambda: subscriber.in_hand(log), timeout=30, interval=0.01)
    run.stack.kill(key)
    held = subscriber.in_hand(log)
    run.say(f"SIGKILLed {key} holding {len(held)} message(s)")
    return held


def _outage(run: ChaosRun, running: str) -> tuple[float, float]:
    """Stop ``running``, the last subscriber up, for ``outage`` seconds, then start both
    again; returns the outage's (start, end) ``time.time()``."""
    run.stack.stop(running)
    began = time.time()
    run.say(f"no subscriber for {run.sizes.outage:g}s")
    time.sleep(run.sizes.outage)
    ended = time.time()
    _start_subscribers(run, *SUBSCRIBERS)
    return began, ended


def _kill_worker_awaiting_acks(run: ChaosRun, *, since: float) -> tuple[dict, int, float]:
    """Once a notification is delivered after ``since`` (acknowledgements recorded again),
    SIGKILL the worker's group, let the subscribers acknowledge for ``ACK_PAUSE`` seconds
    and start a new worker. Returns ({notification id: attempts made} of those awaiting an
    acknowledgement at the kill, acknowledgements queued for the new worker, when it
    started)."""
    from notifications.models import Notification

    wait_until(
        lambda: Notification.objects.filter(delivered_at__gt=at(since)).exists(),
        timeout=60,
        what="acknowledgements recorded after the outage",
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


def _check_faults(run: ChaosRun, *, held: set, redelivered: set, republished: int) -> None:
    """The subscriber kill's and the outage's checks: each happened, with its effect."""
    run.check(
        "the SIGKILLed subscriber held messages, each handed to the other subscriber",
        held and redelivered == held,
        f"held {len(held)}, redelivered {len(redelivered)}",
    )
    run.check(
        "publications made again while no subscriber ran",
        republished > 0,
        f"{republished} publications with attempt number 2 or more during the outage",
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
            # subscriber holds its 16 prefetched messages. RabbitMQ does so at once.
            "CELERY_VISIBILITY_TIMEOUT": "10",
        },
    ),
]
