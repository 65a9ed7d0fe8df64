"""The outbox services (notifications/services.py): create, deliver, sweep, resend.

Deliveries go to a receiver mocked with ``responses``; ``deliver.apply_async`` is a mock in
every test here, so executing an on-commit callback never reaches the broker.
"""

import json
import threading
from datetime import timedelta
from unittest import mock

import pytest
import requests
import responses
from celery.exceptions import Retry
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from notifications import services, tasks
from notifications.models import DeliveryAttempt, Notification
from notifications.services import DeliveryOutcome

URL = "https://receiver.example/notify"
SECRET = "whsec_bm90aWZpY2F0aW9ucy1zZXJ2aWNlcy10ZXN0LXNlY3JldA=="
DATA = {"tx_no": "TX1", "amount": 1234, "currency": "CNY", "status": 100, "paid_at": None}
State = Notification.State


def secrets_for(sender_key: str) -> list[str]:
    """NOTIFY_SECRET_RESOLVER for these tests: notifications knows nothing of merchants."""
    return {"shop": [SECRET]}[sender_key]


@pytest.fixture(autouse=True)
def outbox_settings(settings, deliver_apply_async):
    """Exact (jitter-free) exponential schedule, default caps and the test secret."""
    settings.NOTIFY_RETRY_SCHEDULE = "exponential"
    settings.NOTIFY_RETRY_WINDOW = None
    settings.NOTIFY_TIME_SCALE = 1.0
    settings.NOTIFY_RETRY_JITTER = 0.0
    settings.NOTIFY_COUNTDOWN_CAP = 300
    settings.NOTIFY_CLAIM_TIMEOUT = 120
    settings.NOTIFY_REQUEUE_AFTER = 60
    settings.NOTIFY_SECRET_RESOLVER = "tests.test_notifications_services.secrets_for"
    return settings


@pytest.fixture
def make_notification(db):
    """``make_notification(**fields)`` → a notification created by the service, then with
    ``fields`` forced onto its row (to put it in a given state)."""

    def make(**fields):
        notification = services.notification_create(
            sender_key="shop",
            subject="TX1",
            event_type="recharge.succeeded",
            target_url=URL,
            data=DATA,
        )
        if fields:
            Notification.objects.filter(pk=notification.pk).update(**fields)
            notification.refresh_from_db()
        return notification

    return make


@pytest.fixture
def receiver():
    """A mocked receiver; register replies with ``receiver.add(...)``; inspect ``.calls``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def make_due(notification):
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())


def deliver(notification):
    return services.notification_deliver(notification_id=notification.pk)


# --- create -------------------------------------------------------------------------------


def test_create_freezes_the_signed_envelope(make_notification):
    """The body is the compact JSON envelope {id = webhook-id, type, created_at, data}."""
    notification = make_notification()

    assert json.loads(notification.body) == {
        "id": notification.webhook_id,
        "type": "recharge.succeeded",
        "created_at": notification.created_at.isoformat().replace("+00:00", "Z"),
        "data": DATA,
    }
    assert notification.webhook_id == f"msg_{notification.pk.hex}"
    assert ", " not in notification.body and ": " not in notification.body
    stored = Notification.objects.get(pk=notification.pk)
    assert stored.body == notification.body
    assert (stored.state, stored.attempt_count) == (State.PENDING, 0)
    assert stored.next_attempt_at == stored.created_at
    assert stored.broker_eta == stored.created_at  # the on-commit message is expected
    assert not DeliveryAttempt.objects.exists()


def test_create_enqueues_the_first_attempt_only_on_commit(
    make_notification, django_capture_on_commit_callbacks, deliver_apply_async
):
    """Nothing is sent inside the transaction; one callback sends the id on commit."""
    with django_capture_on_commit_callbacks() as callbacks:
        notification = make_notification()

    assert len(callbacks) == 1
    deliver_apply_async.assert_not_called()
    callbacks[0]()
    deliver_apply_async.assert_called_once()
    assert deliver_apply_async.call_args.kwargs["args"] == (str(notification.pk),)
    assert not deliver_apply_async.call_args.kwargs.get("countdown")


def test_create_in_a_rolled_back_transaction_sends_nothing(
    make_notification, django_capture_on_commit_callbacks
):
    """An outbox row that rolls back leaves neither a row nor a message behind."""
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        make_notification()
        raise RuntimeError("the order update failed")

    assert callbacks == []
    assert not Notification.objects.exists()


# --- deliver ------------------------------------------------------------------------------


def test_deliver_success_marks_delivered_and_records_the_attempt(make_notification, receiver):
    """A 2xx: delivered, attempt 1 with status 204 and a duration, no retry."""
    notification = make_notification()
    receiver.add(responses.POST, URL, status=204)

    outcome = deliver(notification)

    assert outcome == DeliveryOutcome(attempted=True, state=State.DELIVERED, retry_in=None)
    notification.refresh_from_db()
    assert notification.state == State.DELIVERED
    assert notification.attempt_count == 1
    assert notification.delivered_at is not None
    assert (notification.last_status_code, notification.last_error) == (204, "")
    assert notification.claimed_at is None
    attempt = notification.attempts.get()
    assert (attempt.number, attempt.status_code, attempt.succeeded) == (1, 204, True)
    assert attempt.error == ""
    assert 0 <= attempt.duration_ms < 10_000


def test_deliver_posts_the_frozen_body_signed(make_notification, receiver):
    """The receiver gets the stored body byte for byte under a valid signature."""
    notification = make_notification()
    receiver.add(responses.POST, URL, status=200)

    deliver(notification)

    request = receiver.calls[0].request
    assert request.body == notification.body.encode()
    assert request.headers["webhook-id"] == notification.webhook_id
    assert request.headers["Content-Type"] == "application/json"
    payload = Webhook(SECRET).verify(request.body, dict(request.headers))
    assert payload["data"] == DATA


def test_deliver_failure_schedules_a_countdown_retry(make_notification, receiver):
    """A 500 is a failed attempt: pending again, due per the ladder (15 s), short enough
    to travel as a Celery countdown (retry_in and broker_eta set)."""
    notification = make_notification()
    receiver.add(responses.POST, URL, status=500, body="boom")

    before = timezone.now()
    outcome = deliver(notification)
    after = timezone.now()

    notification.refresh_from_db()
    assert notification.state == State.PENDING
    assert notification.attempt_count == 1
    assert before + timedelta(seconds=15) <= notification.next_attempt_at
    assert notification.next_attempt_at <= after + timedelta(seconds=15)
    assert notification.broker_eta == notification.next_attempt_at
    assert (notification.last_status_code, notification.last_error) == (500, "HTTP 500")
    assert outcome.attempted and outcome.state == State.PENDING
    assert 14 < outcome.retry_in <= 15
    attempt = notification.attempts.get()
    assert (attempt.number, attempt.status_code, attempt.succeeded) == (1, 500, False)
    assert (attempt.error, attempt.response_excerpt) == ("HTTP 500", "boom")


@pytest.mark.parametrize(
    ("ladder", "retry_in", "in_broker"),
    [("300s", 300.0, True), ("301s", None, False), ("10m", None, False)],
)
def test_only_delays_up_to_the_countdown_cap_go_to_the_broker(
    make_notification, receiver, outbox_settings, ladder, retry_in, in_broker
):
    """A delay <= NOTIFY_COUNTDOWN_CAP is a countdown; a longer one is kept only as
    next_attempt_at (broker_eta None) for the sweeper."""
    outbox_settings.NOTIFY_RETRY_SCHEDULE = ladder
    notification = make_notification()
    receiver.add(responses.POST, URL, status=503)

    outcome = deliver(notification)

    notification.refresh_from_db()
    assert outcome.state == State.PENDING
    assert outcome.retry_in == retry_in
    assert (notification.broker_eta == notification.next_attempt_at) is in_broker
    assert (notification.broker_eta is None) is not in_broker
    assert notification.next_attempt_at > timezone.now() + timedelta(seconds=290)


def test_network_failure_is_a_failed_attempt(make_notification, receiver):
    """A refused connection is recorded as a failed attempt without a status code."""
    notification = make_notification()
    receiver.add(responses.POST, URL, body=requests.ConnectionError("refused"))

    outcome = deliver(notification)

    notification.refresh_from_db()
    assert outcome.state == State.PENDING
    assert notification.last_status_code is None
    assert notification.last_error.startswith("connection error")


def test_exhausted_after_the_ladder_with_the_same_id_and_body_every_time(
    make_notification, receiver, outbox_settings
):
    """Ladder 1s,1s: three failing attempts, then exhausted; every attempt sent the same
    webhook-id and body, each freshly signed."""
    outbox_settings.NOTIFY_RETRY_SCHEDULE = "1s,1s"
    notification = make_notification()
    receiver.add(responses.POST, URL, status=500)

    states = []
    for _ in range(3):
        states.append(deliver(notification).state)
        make_due(notification)

    assert states == [State.PENDING, State.PENDING, State.EXHAUSTED]
    notification.refresh_from_db()
    assert notification.state == State.EXHAUSTED
    assert notification.attempt_count == 3
    assert list(notification.attempts.values_list("number", flat=True)) == [1, 2, 3]
    requests = [call.request for call in receiver.calls]
    assert {r.headers["webhook-id"] for r in requests} == {notification.webhook_id}
    assert {r.body for r in requests} == {notification.body.encode()}
    for request in requests:
        assert Webhook(SECRET).verify(request.body, dict(request.headers))
    assert deliver(notification) == DeliveryOutcome(attempted=False)
    assert len(receiver.calls) == 3


def test_exhausted_when_the_window_has_closed(make_notification, receiver, outbox_settings):
    """NOTIFY_RETRY_WINDOW=1h and a notification created 2 h ago: a failure exhausts it."""
    outbox_settings.NOTIFY_RETRY_WINDOW = 3600
    notification = make_notification(created_at=timezone.now() - timedelta(hours=2))
    receiver.add(responses.POST, URL, status=500)

    outcome = deliver(notification)

    assert outcome == DeliveryOutcome(attempted=True, state=State.EXHAUSTED, retry_in=None)
    notification.refresh_from_db()
    assert (notification.state, notification.claimed_at) == (State.EXHAUSTED, None)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"state": State.SENDING}, id="claimed"),
        pytest.param({"next_attempt_at": timezone.now() + timedelta(hours=1)}, id="not-due"),
        pytest.param({"state": State.DELIVERED}, id="delivered"),
        pytest.param({"state": State.EXHAUSTED}, id="exhausted"),
    ],
)
def test_nothing_to_claim_means_no_request(make_notification, receiver, fields):
    """A duplicated or early task message finds nothing to claim: no HTTP, no change."""
    if fields.get("state") == State.SENDING:
        fields = {**fields, "claimed_at": timezone.now(), "attempt_count": 1}
    notification = make_notification(**fields)
    receiver.add(responses.POST, URL, status=204)

    outcome = deliver(notification)

    assert outcome == DeliveryOutcome(attempted=False)
    assert len(receiver.calls) == 0
    stored = Notification.objects.get(pk=notification.pk)
    assert (stored.state, stored.attempt_count) == (notification.state, notification.attempt_count)
    assert not DeliveryAttempt.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_make_one_attempt(outbox_settings):
    """Two workers run the same message at once (a redelivery): exactly one POST is made."""
    notification = services.notification_create(
        sender_key="shop", subject="TX1", event_type="recharge.succeeded", target_url=URL, data={}
    )
    barrier = threading.Barrier(2)
    outcomes = []

    def worker():
        try:
            barrier.wait()
            outcomes.append(deliver(notification))
        finally:
            connection.close()

    with responses.RequestsMock() as receiver:
        receiver.add(responses.POST, URL, status=204)
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(receiver.calls) == 1

    assert sorted(o.attempted for o in outcomes) == [False, True]
    notification.refresh_from_db()
    assert (notification.state, notification.attempt_count) == (State.DELIVERED, 1)


# --- tasks --------------------------------------------------------------------------------


def test_deliver_task_turns_a_short_delay_into_a_countdown_retry():
    """The task wrapper raises self.retry(countdown=retry_in) when the service asks for it."""
    outcome = DeliveryOutcome(attempted=True, state=State.PENDING, retry_in=12.5)
    with (
        mock.patch.object(services, "notification_deliver", return_value=outcome) as service,
        mock.patch.object(tasks.deliver, "retry", return_value=Retry()) as retry,
        pytest.raises(Retry),
    ):
        tasks.deliver.run("a-notification-id")

    service.assert_called_once_with(notification_id="a-notification-id")
    retry.assert_called_once_with(countdown=12.5)


def test_deliver_task_does_not_retry_when_the_sweeper_owns_the_next_attempt():
    """retry_in None (delivered, exhausted or a long delay): the task just returns."""
    outcome = DeliveryOutcome(attempted=True, state=State.PENDING, retry_in=None)
    with (
        mock.patch.object(services, "notification_deliver", return_value=outcome),
        mock.patch.object(tasks.deliver, "retry") as retry,
    ):
        tasks.deliver.run("a-notification-id")

    retry.assert_not_called()


# --- sweep --------------------------------------------------------------------------------


def test_sweep_releases_an_orphaned_claim_as_an_abandoned_attempt(make_notification, receiver):
    """A claim older than NOTIFY_CLAIM_TIMEOUT (worker killed) becomes a failed "abandoned"
    attempt and the next attempt is scheduled; a recent claim is left alone."""
    now = timezone.now()
    dead_claim = now - timedelta(minutes=10)
    orphan = make_notification(state=State.SENDING, attempt_count=1, claimed_at=dead_claim)
    in_flight = make_notification(
        state=State.SENDING, attempt_count=1, claimed_at=now - timedelta(seconds=10)
    )

    result = services.notifications_sweep()

    assert result == {"released": 1, "enqueued": 0}
    orphan.refresh_from_db()
    assert orphan.state == State.PENDING
    assert orphan.claimed_at is None and orphan.broker_eta is None
    assert now + timedelta(seconds=14) < orphan.next_attempt_at < now + timedelta(seconds=20)
    assert orphan.last_error.startswith("abandoned")
    attempt = orphan.attempts.get()
    assert (attempt.number, attempt.status_code, attempt.succeeded) == (1, None, False)
    assert attempt.started_at == dead_claim
    assert attempt.error.startswith("abandoned")
    in_flight.refresh_from_db()
    assert in_flight.state == State.SENDING
    assert not in_flight.attempts.exists()

    make_due(orphan)
    receiver.add(responses.POST, URL, status=204)
    assert deliver(orphan).state == State.DELIVERED
    assert list(orphan.attempts.values_list("number", "succeeded")) == [(1, False), (2, True)]


def test_sweep_enqueues_due_rows_without_a_live_message(
    make_notification, django_capture_on_commit_callbacks, deliver_apply_async
):
    """Due rows with no broker message (none, or one presumed lost) are enqueued, oldest
    first; a recent message, a future attempt and a final row are not."""
    now = timezone.now()
    never_sent = make_notification(next_attempt_at=now - timedelta(minutes=2), broker_eta=None)
    lost = make_notification(
        next_attempt_at=now - timedelta(minutes=1), broker_eta=now - timedelta(minutes=10)
    )
    make_notification(broker_eta=now - timedelta(seconds=5))  # message still live
    make_notification(next_attempt_at=now + timedelta(hours=1), broker_eta=None)
    make_notification(state=State.DELIVERED, broker_eta=None)
    make_notification(state=State.EXHAUSTED, broker_eta=None)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = services.notifications_sweep()

    assert result == {"released": 0, "enqueued": 2}
    assert len(callbacks) == 2
    sent = [call.kwargs["args"] for call in deliver_apply_async.call_args_list]
    assert sent == [(str(never_sent.pk),), (str(lost.pk),)]
    for notification in (never_sent, lost):
        notification.refresh_from_db()
        assert notification.broker_eta >= now
    assert services.notifications_sweep() == {"released": 0, "enqueued": 0}


def test_sweep_leaves_a_long_delay_to_its_due_time(make_notification, receiver, outbox_settings):
    """A retry kept only in the database (longer than the cap) is enqueued once it is due."""
    outbox_settings.NOTIFY_RETRY_SCHEDULE = "10m"
    notification = make_notification()
    receiver.add(responses.POST, URL, status=500)
    deliver(notification)

    assert services.notifications_sweep()["enqueued"] == 0
    make_due(notification)
    assert services.notifications_sweep()["enqueued"] == 1


# --- resend -------------------------------------------------------------------------------


def test_resend_gives_an_exhausted_notification_one_more_attempt(
    make_notification, receiver, django_capture_on_commit_callbacks
):
    """Staff's resend: pending and due now, one message on commit, exactly one more POST;
    failing again leaves it exhausted with no further attempt."""
    notification = make_notification(
        state=State.EXHAUSTED, attempt_count=15, next_attempt_at=timezone.now() - timedelta(days=1)
    )
    receiver.add(responses.POST, URL, status=500)

    with django_capture_on_commit_callbacks() as callbacks:
        assert services.notification_resend(notification_id=notification.pk) is True

    assert len(callbacks) == 1
    notification.refresh_from_db()
    assert notification.state == State.PENDING
    assert notification.next_attempt_at <= timezone.now()
    assert deliver(notification).state == State.EXHAUSTED
    assert deliver(notification) == DeliveryOutcome(attempted=False)
    assert len(receiver.calls) == 1
    notification.refresh_from_db()
    assert notification.attempt_count == 16
    assert list(notification.attempts.values_list("number", flat=True)) == [16]


def test_resend_that_succeeds_delivers(make_notification, receiver):
    """An exhausted notification resent to a receiver that is back is delivered."""
    notification = make_notification(state=State.EXHAUSTED, attempt_count=15)
    receiver.add(responses.POST, URL, status=200)

    services.notification_resend(notification_id=notification.pk)

    assert deliver(notification).state == State.DELIVERED


def test_resend_refuses_while_an_attempt_is_in_flight(
    make_notification, django_capture_on_commit_callbacks
):
    """A claimed (sending) notification is not resent: that would be two attempts at once."""
    notification = make_notification(state=State.SENDING, claimed_at=timezone.now())

    with django_capture_on_commit_callbacks() as callbacks:
        assert services.notification_resend(notification_id=notification.pk) is False

    assert callbacks == []
    notification.refresh_from_db()
    assert notification.state == State.SENDING
