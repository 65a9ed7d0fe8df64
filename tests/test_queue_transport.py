"""Queue targets, the seeds' scheme 1 (notifications/queues.py, publisher.py, subscriber.py):
publish a claimed attempt on the broker, consume it, acknowledge it, record the
acknowledgement.

On the broker this process's settings name (Redis, or RabbitMQ with ``CELERY_BROKER_URL``),
each test with queue names of its own, deleted afterwards. The Celery wake-ups are mocks.
"""

import json
import time
import uuid

import pytest
from celery import current_app
from django.core.management import CommandError, call_command
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from config.broker import broker_is_redis
from notifications import queues, services
from notifications.delivery import attempts_record, deliveries_claim, deliveries_run
from notifications.dispatcher import Dispatcher
from notifications.models import DeliveryAttempt, Endpoint, Notification
from notifications.publisher import QUEUED, AckReader, Publisher, ack_body
from notifications.retry import schedule_from_settings
from notifications.subscriber import Subscriber

SECRET = "whsec_cXVldWUtdHJhbnNwb3J0LXRlc3Qtc2VjcmV0IQ=="
DATA = {"tx_no": "TX1", "amount": 1234, "currency": "CNY", "status": 100, "paid_at": None}
State = Notification.State
LADDER = (60, 300, 600, 1800, 3600, 7200, 18000, 36000)  # seconds: 1m … 10h


def secrets_for(sender_key: str) -> list[str]:
    """NOTIFY_SECRET_RESOLVER for these tests."""
    return [SECRET]


@pytest.fixture(autouse=True)
def queue_settings(settings, deliver_apply_async):
    """The test secret, the scheme-1 ladder without jitter, at full scale."""
    settings.NOTIFY_SECRET_RESOLVER = "tests.test_queue_transport.secrets_for"
    settings.NOTIFY_QUEUE_RETRY_SCHEDULE = "queue"
    settings.NOTIFY_RETRY_WINDOW = None
    settings.NOTIFY_TIME_SCALE = 1.0
    settings.NOTIFY_RETRY_JITTER = 0.0
    return settings


def delete_queues(name: str) -> None:
    """Delete subscriber ``name``'s queues and the acknowledgements', messages and all.
    Each is declared first: kombu's Redis transport deletes only the queues its channel
    knows the bindings of."""
    with current_app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in (queues.notify_queue(name), queues.dead_queue(name), queues.acks_queue()):
            bound = queue(channel)
            bound.declare()
            bound.delete()


@pytest.fixture
def name():
    """A queue name of this test's own; its queues and the acknowledgements' are empty at
    the start and deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    delete_queues(name)
    yield name
    delete_queues(name)


def create(name: str) -> Notification:
    return services.notification_create(
        sender_key="shop",
        subject="TX1",
        event_type="recharge.succeeded",
        target_url=f"queue://{name}",
        data=DATA,
    )


def subscribe_once(name: str, handler) -> None:
    """Run a subscriber of ``name`` until it has handled one message (at most 10 s)."""
    with current_app.connection_for_read() as connection:
        subscriber = Subscriber(connection=connection, name=name, handler=handler)
        for _ in subscriber.consume(limit=1, timeout=10):
            pass


def read_acks_once() -> None:
    """Run an acknowledgement reader until it has recorded one (at most 10 s)."""
    reader = AckReader()
    try:
        for _ in reader.consume(limit=1, timeout=10):
            pass
    finally:
        reader.connection.release()


def waiting(queue) -> int:
    """Messages ready in ``queue`` (a passive declare: 0 when it does not exist)."""
    with current_app.connection_for_write() as connection:
        try:
            return queue(connection.default_channel).queue_declare(passive=True).message_count
        except connection.channel_errors:
            return 0


def publish_attempt(notification: Notification) -> Notification:
    """Claim and publish the notification's next attempt; the row as recorded."""
    deliveries_run(limit=1, hints=[notification.pk])
    return Notification.objects.get(pk=notification.pk)


# --- Names and the schedule -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("queue://accounts", "accounts"),
        ("queue://a-1", "a-1"),
        ("queue://Accounts", None),
        ("queue://", None),
        ("queue://a/b", None),
        (f"queue://{'a' * 41}", None),
        ("https://accounts.example/notify", None),
    ],
)
def test_queue_names_are_lower_case_letters_digits_and_dashes(url, name):
    """Only ``queue://`` and 1-40 of a-z, 0-9 or - name a queue target."""
    assert queues.queue_name(url) == name


def test_queue_targets_follow_the_seeds_ladder_then_are_exhausted(settings):
    """The "queue" schedule: 1m, 5m, 10m, 30m, 1h, 2h, 5h, 10h, then nothing."""
    schedule = schedule_from_settings(queue=True)
    now = timezone.now()

    delays = [
        (schedule.next_attempt_at(attempts_made=n, created_at=now, now=now) - now).total_seconds()
        for n in range(1, 9)
    ]

    assert delays == list(LADDER)
    assert schedule.next_attempt_at(attempts_made=9, created_at=now, now=now) is None
    assert schedule_from_settings().delays != schedule.delays  # HTTP keeps its own


# --- Publish --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_publish_is_recorded_as_queued_and_due_again_after_the_first_step(name):
    """The attempt is published with its signed headers and attempt number, recorded as
    queued (not succeeded), and the notification is pending again 1 minute later; the
    endpoint (queue://name) has no circuit to count it in."""
    notification = create(name)
    before = timezone.now()

    row = publish_attempt(notification)

    assert row.state == State.PENDING
    delay = (row.next_attempt_at - before).total_seconds()
    assert LADDER[0] - 5 <= delay <= LADDER[0] + 5
    attempt = DeliveryAttempt.objects.get(notification=notification)
    assert (attempt.number, attempt.succeeded, attempt.response_excerpt, attempt.error) == (
        1,
        False,
        QUEUED,
        "",
    )
    assert attempt.request_headers["webhook-id"] == notification.webhook_id
    assert attempt.request_headers["attempt"] == 1
    endpoint = Endpoint.objects.get(pk=row.endpoint_id)
    assert (endpoint.origin, endpoint.attempts_total) == (f"queue://{name}", 0)
    received = []
    subscribe_once(name, lambda body, headers: received.append((body, headers)) or (True, ""))
    [(body, headers)] = received
    assert body == notification.body.encode()
    assert headers["attempt"] == 1
    Webhook(SECRET).verify(body.decode(), headers)  # raises unless signed as over HTTP


@pytest.mark.django_db(transaction=True)
def test_a_publish_the_broker_refuses_is_a_failed_attempt_retried_on_the_ladder(name):
    """Broker unreachable: the attempt fails with "broker: …" and is due again after the
    first step; nothing is queued."""
    notification = create(name)
    [claimed] = deliveries_claim(limit=1, hints=[notification.pk])
    conf = current_app.conf
    original = conf.broker_write_url
    conf.broker_write_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        started = timezone.now()
        result = Publisher().publish(claimed)
    finally:
        conf.broker_write_url = original

    [recorded] = attempts_record([(claimed, result, started)])

    assert result.error.startswith("broker: ")
    assert recorded.state == State.PENDING
    assert LADDER[0] - 5 <= (recorded.next_attempt_at - started).total_seconds() <= LADDER[0] + 5
    attempt = DeliveryAttempt.objects.get(notification=notification)
    assert (attempt.succeeded, attempt.error) == (False, result.error)
    assert waiting(queues.notify_queue(name)) == 0


# --- Subscribe and acknowledge --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_acknowledged_message_delivers_the_notification(name):
    """The handler says ok: the subscriber publishes an acknowledgement, the reader records
    it: the notification is delivered and its attempt marked succeeded."""
    notification = create(name)
    publish_attempt(notification)

    subscribe_once(name, lambda body, headers: (True, "applied"))
    read_acks_once()

    row = Notification.objects.get(pk=notification.pk)
    assert (row.state, row.delivered_at is not None) == (State.DELIVERED, True)
    attempt = DeliveryAttempt.objects.get(notification=notification)
    assert (attempt.succeeded, attempt.response_excerpt) == (True, services.ACKNOWLEDGED)
    assert waiting(queues.notify_queue(name)) == 0


@pytest.mark.django_db(transaction=True)
def test_a_refused_message_is_not_acknowledged_and_dead_lettered_on_rabbitmq(name):
    """The handler refuses: no acknowledgement, the message leaves the queue (RabbitMQ keeps
    it in the .dead queue, Redis drops it) and the notification stays pending for the
    ladder to publish it again."""
    notification = create(name)
    publish_attempt(notification)

    subscribe_once(name, lambda body, headers: (False, "amount mismatch"))

    assert waiting(queues.notify_queue(name)) == 0
    assert waiting(queues.acks_queue()) == 0
    redis = broker_is_redis(current_app.conf.broker_url)
    assert waiting(queues.dead_queue(name)) == (0 if redis else 1)
    assert Notification.objects.get(pk=notification.pk).state == State.PENDING


@pytest.mark.django_db(transaction=True)
def test_a_handler_that_raises_refuses_the_message(name):
    """An exception in the handler refuses the message rather than killing the subscriber:
    no acknowledgement, the message off the queue."""
    publish_attempt(create(name))

    def broken(body, headers):
        raise RuntimeError("database away")

    subscribe_once(name, broken)

    assert waiting(queues.notify_queue(name)) == 0
    assert waiting(queues.acks_queue()) == 0


@pytest.mark.django_db(transaction=True)
def test_a_message_taken_and_never_acknowledged_is_delivered_again(name):
    """A consumer that takes the message and loses its connection before acking: the broker
    puts the message back, and the next subscriber applies it."""
    notification = create(name)
    publish_attempt(notification)
    with current_app.connection_for_read() as connection:
        taken = queues.notify_queue(name)(connection.default_channel).get(no_ack=False)
        assert taken is not None
        assert waiting(queues.notify_queue(name)) == 0
    # The connection is gone with the message unacknowledged.

    received = []
    subscribe_once(name, lambda body, headers: received.append(headers) or (True, ""))

    assert [headers["webhook-id"] for headers in received] == [notification.webhook_id]


# --- In a worker process's dispatcher -------------------------------------------------------


@pytest.fixture
def dispatcher():
    """A dispatcher of this process, stopped afterwards; ``dispatcher()`` starts it."""
    started = []

    def start() -> Dispatcher:
        running = Dispatcher()
        running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop(timeout=10)


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def is_delivered(notification: Notification) -> bool:
    return Notification.objects.filter(pk=notification.pk, state=State.DELIVERED).exists()


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_publishes_and_records_the_acknowledgement(name, dispatcher):
    """A worker's dispatcher publishes a fresh queue target's notification and, once the
    subscriber acknowledges it, records the acknowledgement itself: delivered."""
    notification = create(name)
    dispatcher().wake(hint=str(notification.pk))
    assert wait_for(lambda: DeliveryAttempt.objects.filter(notification=notification).exists())

    subscribe_once(name, lambda body, headers: (True, "applied"))

    assert wait_for(lambda: is_delivered(notification))


@pytest.mark.django_db(transaction=True)
def test_a_dispatcher_reads_acknowledgements_from_its_start(name, dispatcher):
    """Acknowledged while no worker read them (published by a process since gone): a new
    worker's dispatcher records them at once, without publishing anything first."""
    notification = create(name)
    publish_attempt(notification)
    subscribe_once(name, lambda body, headers: (True, "applied"))

    dispatcher()

    assert wait_for(lambda: is_delivered(notification))
    assert Notification.objects.get(pk=notification.pk).attempt_count == 1


# --- Recording acknowledgements ---------------------------------------------------------------


def published_twice(name: str) -> Notification:
    """A notification published as attempt 1, then (its step passed) as attempt 2."""
    notification = create(name)
    publish_attempt(notification)
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
    return publish_attempt(notification)


@pytest.mark.django_db(transaction=True)
def test_a_late_acknowledgement_of_an_earlier_publication_still_delivers(name):
    """The ack of attempt 1 arrives after attempt 2 was published: delivered, attempt 1
    succeeded, attempt 2 still shown as queued."""
    notification = published_twice(name)
    assert notification.attempt_count == 2

    outcome = services.notification_acknowledge(webhook_id=notification.webhook_id, number=1)

    assert outcome == "delivered"
    assert Notification.objects.get(pk=notification.pk).state == State.DELIVERED
    attempts = DeliveryAttempt.objects.filter(notification=notification)
    assert [(a.number, a.succeeded) for a in attempts] == [(1, True), (2, False)]


@pytest.mark.django_db(transaction=True)
def test_an_acknowledgement_after_the_window_closed_still_delivers(name):
    """An exhausted notification acknowledged (its last publication consumed late) is
    delivered: the subscriber applied it."""
    notification = create(name)
    publish_attempt(notification)
    Notification.objects.filter(pk=notification.pk).update(state=State.EXHAUSTED)

    outcome = services.notification_acknowledge(webhook_id=notification.webhook_id, number=1)

    assert outcome == "delivered"
    assert Notification.objects.get(pk=notification.pk).state == State.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_acknowledgement_changes_nothing(name):
    """A second ack of the same attempt: "duplicate", delivered_at as the first left it."""
    notification = create(name)
    publish_attempt(notification)
    services.notification_acknowledge(webhook_id=notification.webhook_id, number=1)
    first = Notification.objects.get(pk=notification.pk).delivered_at

    outcome = services.notification_acknowledge(webhook_id=notification.webhook_id, number=1)

    assert outcome == "duplicate"
    assert Notification.objects.get(pk=notification.pk).delivered_at == first


@pytest.mark.django_db(transaction=True)
def test_an_acknowledgement_before_its_attempt_is_recorded_waits(name):
    """Attempt 1 still claimed (published, not yet recorded): "early", nothing changed, so
    recording the attempt cannot overwrite the acknowledgement."""
    notification = create(name)
    deliveries_claim(limit=1, hints=[notification.pk])

    outcome = services.notification_acknowledge(webhook_id=notification.webhook_id, number=1)

    assert outcome == "early"
    row = Notification.objects.get(pk=notification.pk)
    assert (row.state, row.attempt_count) == (State.SENDING, 1)
    assert not DeliveryAttempt.objects.exists()


@pytest.mark.parametrize("webhook_id", [f"msg_{uuid.uuid4().hex}", "not-ours", ""])
@pytest.mark.django_db
def test_an_acknowledgement_of_an_unknown_notification_is_dropped(webhook_id):
    """Pruned, another deployment's or malformed: "unknown", nothing written."""
    assert services.notification_acknowledge(webhook_id=webhook_id, number=1) == "unknown"
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        json.dumps({"webhook_id": "msg_x", "attempt": 0, "ok": True}),
        json.dumps({"webhook_id": "msg_x", "attempt": "1", "ok": True}),
        json.dumps({"webhook_id": "msg_x", "attempt": 1, "ok": False}),
        json.dumps(["msg_x", 1]),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_a_malformed_acknowledgement_is_dropped(name, body):
    """An acknowledgement the reader cannot read is acked and dropped, recording nothing
    (it would otherwise come back forever)."""
    notification = create(name)
    publish_attempt(notification)
    with current_app.connection_for_write() as connection:
        connection.Producer().publish(
            body,
            exchange=queues.exchange(),
            routing_key=queues.acks_queue().routing_key,
            declare=[queues.acks_queue()],
            content_type="application/json",
            content_encoding="utf-8",
        )

    read_acks_once()

    assert waiting(queues.acks_queue()) == 0
    assert Notification.objects.get(pk=notification.pk).state == State.PENDING


def test_the_acknowledgement_names_the_webhook_id_and_attempt():
    """What a subscriber sends back: the webhook-id, the attempt number, ok."""
    assert ack_body(webhook_id="msg_1", number=3) == {
        "webhook_id": "msg_1",
        "attempt": 3,
        "ok": True,
    }


# --- The command ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Name", "--handler", "tests.test_queue_transport.secrets_for"], "queue name"),
        (["accounts", "--handler", "tests.nowhere.handler"], "--handler"),
    ],
)
def test_notifications_consume_refuses_a_bad_name_or_handler(args, message):
    """A malformed queue name or an unimportable handler stops the command with a reason."""
    with pytest.raises(CommandError, match=message):
        call_command("notifications_consume", *args)
