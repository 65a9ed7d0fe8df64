"""The outbox (notifications/services.py, delivery.py): create, claim, send, record, sweep,
resend; endpoints' caps, turns and health; re-enable and recover.

Deliveries go to real receivers on loopback (tests/receiver.py); the Celery wake-ups
(``deliver``/``dispatch``.apply_async) are mocks, so an on-commit callback never reaches a
broker.
"""

import json
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from core.clock import database_now
from notifications import alerts, services, tasks
from notifications.delivery import deliveries_claim, deliveries_run
from notifications.endpoints import origin_of
from notifications.models import DeliveryAttempt, Endpoint, Notification
from tests.receiver import Receiver, Reply

SECRET = "whsec_bm90aWZpY2F0aW9ucy1zZXJ2aWNlcy10ZXN0LXNlY3JldA=="
DATA = {"tx_no": "TX1", "amount": 1234, "currency": "CNY", "status": 100, "paid_at": None}
State = Notification.State
OPS_URLS = {}


# Queries database_now() makes: one on PostgreSQL (its clock), none on SQLite (this host's).
CLOCK_QUERIES = 1 if connection.vendor == "postgresql" else 0


def secrets_for(sender_key: str) -> list[str]:
    """NOTIFY_SECRET_RESOLVER for these tests: notifications knows nothing of merchants."""
    return {"shop": [SECRET], "other": [SECRET]}[sender_key]


def ops_url_for(sender_key: str) -> str | None:
    return OPS_URLS.get(sender_key)


@pytest.fixture(autouse=True)
def outbox_settings(settings, deliver_apply_async):
    """Exact (jitter-free) exponential schedule, the test secret, a short deadline."""
    settings.NOTIFY_RETRY_SCHEDULE = "exponential"
    settings.NOTIFY_RETRY_WINDOW = None
    settings.NOTIFY_TIME_SCALE = 1.0
    settings.NOTIFY_RETRY_JITTER = 0.0
    settings.NOTIFY_CLAIM_TIMEOUT = 120
    settings.NOTIFY_ATTEMPT_DEADLINE = 2.0
    settings.NOTIFY_ENDPOINT_MAX_IN_FLIGHT = 16
    settings.NOTIFY_SECRET_RESOLVER = "tests.test_notifications_services.secrets_for"
    settings.NOTIFY_OPS_URL_RESOLVER = "tests.test_notifications_services.ops_url_for"
    return settings


@pytest.fixture
def dispatch_apply_async():
    with mock.patch("notifications.tasks.dispatch.apply_async") as apply_async:
        yield apply_async


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def make_notification(db, receiver):
    """``make_notification(url=..., sender_key=..., **fields)`` → a notification created by
    the service (to ``receiver`` by default), then with ``fields`` forced onto its row."""

    def make(*, url=None, sender_key="shop", **fields):
        notification = services.notification_create(
            sender_key=sender_key,
            subject="TX1",
            event_type="recharge.succeeded",
            target_url=url or receiver.url,
            data=DATA,
        )
        if fields:
            Notification.objects.filter(pk=notification.pk).update(**fields)
            notification.refresh_from_db()
        return notification

    return make


def make_due(notification):
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())


def deliver(notification) -> str | None:
    """Run one delivery with ``notification`` as the hint; its new state, or None when it
    was not claimed."""
    recorded = deliveries_run(hints=[notification.pk])
    return next((r.state for r in recorded if r.notification_id == notification.pk), None)


def endpoint_of(notification) -> Endpoint:
    return Endpoint.objects.get(pk=notification.endpoint_id)


# --- create -------------------------------------------------------------------------------


def test_create_freezes_the_envelope_and_files_it_under_its_endpoint(make_notification, receiver):
    """The body is the compact JSON envelope {id = webhook-id, type, created_at, data}; the
    endpoint is the sender plus the URL's origin, one row however many notifications."""
    notification = make_notification()
    second = make_notification()

    assert json.loads(notification.body) == {
        "id": notification.webhook_id,
        "type": "recharge.succeeded",
        "created_at": notification.created_at.isoformat().replace("+00:00", "Z"),
        "data": DATA,
    }
    endpoint = endpoint_of(notification)
    assert (endpoint.sender_key, endpoint.state) == ("shop", Endpoint.State.CLOSED)
    assert endpoint.origin == receiver.url.removesuffix("/notify")
    assert second.endpoint_id == endpoint.pk
    stored = Notification.objects.get(pk=notification.pk)
    assert (stored.state, stored.attempt_count) == (State.PENDING, 0)
    assert stored.next_attempt_at == stored.created_at
    assert not DeliveryAttempt.objects.exists()


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Shop.Example/notify?x=1", "https://shop.example:443"),
        ("http://shop.example/n", "http://shop.example:80"),
        ("http://shop.example:8080/n", "http://shop.example:8080"),
        ("https://[2001:db8::1]/n", "https://[2001:db8::1]:443"),
    ],
)
def test_origin_of_a_url(url, origin):
    assert origin_of(url) == origin


def test_create_wakes_a_worker_only_on_commit(
    make_notification, django_capture_on_commit_callbacks, deliver_apply_async
):
    """Nothing is sent inside the transaction; one callback sends the id on commit."""
    with django_capture_on_commit_callbacks() as callbacks:
        notification = make_notification()

    assert len(callbacks) == 1
    deliver_apply_async.assert_not_called()
    callbacks[0]()
    deliver_apply_async.assert_called_once_with(args=(str(notification.pk),))


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


# --- claim, send, record ------------------------------------------------------------------


def test_success_marks_delivered_and_records_the_attempt(make_notification, receiver):
    notification = make_notification()
    receiver.default = Reply(status=200, body=b"ok")

    assert deliver(notification) == State.DELIVERED

    notification.refresh_from_db()
    assert (notification.state, notification.attempt_count) == (State.DELIVERED, 1)
    assert notification.delivered_at is not None and notification.claimed_at is None
    attempt = notification.attempts.get()
    assert (attempt.number, attempt.status_code, attempt.succeeded) == (1, 200, True)
    assert (attempt.response_excerpt, attempt.error) == ("ok", "")
    endpoint = endpoint_of(notification)
    assert (endpoint.attempts_total, endpoint.failures_total) == (1, 0)
    assert endpoint.last_success_at is not None


def test_the_frozen_body_is_posted_signed(make_notification, receiver):
    notification = make_notification()

    deliver(notification)

    [request] = receiver.received
    assert request.body == notification.body.encode()
    assert request.headers["webhook-id"] == notification.webhook_id
    assert Webhook(SECRET).verify(request.body, request.headers)


def test_failure_schedules_the_next_attempt_on_the_schedule(make_notification, receiver):
    """A 500: failed attempt recorded, pending again, due 15 s later (the first step)."""
    notification = make_notification()
    receiver.default = Reply(status=500, body=b"boom")
    before = timezone.now()

    assert deliver(notification) == State.PENDING

    notification.refresh_from_db()
    assert (notification.last_status_code, notification.last_error) == (500, "HTTP 500")
    assert before + timedelta(seconds=15) <= notification.next_attempt_at
    assert notification.next_attempt_at <= timezone.now() + timedelta(seconds=15)
    assert notification.attempts.get().response_excerpt == "boom"


@pytest.mark.parametrize(
    ("retry_after", "waited"),
    [("5", 15), ("20", 20), ("600", 30), (None, 15)],
    ids=["below: the schedule", "within: as asked", "above: twice the schedule", "absent"],
)
def test_retry_after_is_honoured_within_one_and_two_times_the_schedule(
    make_notification, receiver, retry_after, waited
):
    """A 503 with Retry-After: the next attempt at that time, clamped to [1×, 2×] the
    scheduled delay (15 s here)."""
    notification = make_notification()
    headers = {"Retry-After": retry_after} if retry_after else {}
    receiver.default = Reply(status=503, headers=headers)
    before = timezone.now()

    deliver(notification)

    notification.refresh_from_db()
    delay = (notification.next_attempt_at - before).total_seconds()
    assert waited <= delay < waited + 2


def test_a_hanging_receiver_costs_the_deadline_and_is_recorded(make_notification, receiver):
    """The attempt ends at the deadline, recorded as a timeout: never left claimed."""
    notification = make_notification()
    receiver.default = Reply(hang=True)

    assert deliver(notification) == State.PENDING

    attempt = notification.attempts.get()
    assert attempt.error == "timeout after 2 s"
    assert 1900 <= attempt.duration_ms < 4000


def test_a_refused_connection_is_a_failed_attempt(make_notification):
    with Receiver() as gone:
        url = gone.url
    notification = make_notification(url=url)

    assert deliver(notification) == State.PENDING

    notification.refresh_from_db()
    assert notification.last_status_code is None
    assert notification.last_error.startswith("connection error")


def test_exhausted_after_the_ladder_with_the_same_id_and_body_every_time(
    make_notification, receiver, outbox_settings
):
    """Ladder 1s,1s: three failing attempts, then exhausted; every attempt sent the same
    webhook-id and body, each freshly signed; then nothing more is claimed."""
    outbox_settings.NOTIFY_RETRY_SCHEDULE = "1s,1s"
    notification = make_notification()
    receiver.default = Reply(status=500)

    states = []
    for _ in range(3):
        states.append(deliver(notification))
        make_due(notification)

    assert states == [State.PENDING, State.PENDING, State.EXHAUSTED]
    assert list(notification.attempts.values_list("number", flat=True)) == [1, 2, 3]
    assert {r.headers["webhook-id"] for r in receiver.received} == {notification.webhook_id}
    assert {r.body for r in receiver.received} == {notification.body.encode()}
    for request in receiver.received:
        assert Webhook(SECRET).verify(request.body, request.headers)
    assert deliver(notification) is None
    assert len(receiver.received) == 3


def test_exhausted_when_the_window_has_closed(make_notification, receiver, outbox_settings):
    """NOTIFY_RETRY_WINDOW=1h and a notification created 2 h ago: a failure exhausts it."""
    outbox_settings.NOTIFY_RETRY_WINDOW = 3600
    notification = make_notification(created_at=timezone.now() - timedelta(hours=2))
    receiver.default = Reply(status=500)

    assert deliver(notification) == State.EXHAUSTED


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
    """A duplicated or early wake-up finds nothing to claim: no HTTP, no change."""
    if fields.get("state") == State.SENDING:
        fields = {**fields, "claimed_at": timezone.now(), "attempt_count": 1}
    notification = make_notification(**fields)

    assert deliver(notification) is None

    assert receiver.received == []
    stored = Notification.objects.get(pk=notification.pk)
    assert (stored.state, stored.attempt_count) == (notification.state, notification.attempt_count)
    assert not DeliveryAttempt.objects.exists()


def test_a_hint_for_a_notification_this_database_lacks_is_logged(db, caplog):
    """Another deployment's message on a shared broker: an error naming the namespace."""
    missing = "3f1e9b2c-0000-4000-8000-000000000000"

    assert deliveries_claim(limit=1, hints=[missing, "not-a-uuid"]) == []

    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    assert missing in errors[0].getMessage() and "DEPLOYMENT_NAMESPACE" in errors[0].getMessage()


def test_an_unsigned_attempt_fails_without_a_request(make_notification, receiver, outbox_settings):
    """A sender whose secrets cannot be found: the attempt fails with the reason, nothing
    is sent, and the endpoint is not blamed."""
    notification = make_notification(sender_key="nobody")

    assert deliver(notification) == State.PENDING

    assert receiver.received == []
    assert notification.attempts.get().error.startswith("not sent: cannot sign (KeyError")
    assert endpoint_of(notification).attempts_total == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_make_one_attempt(outbox_settings, receiver):
    """Two workers claim the same notification at once: exactly one POST is made."""
    notification = services.notification_create(
        sender_key="shop", subject="TX1", event_type="t", target_url=receiver.url, data={}
    )
    barrier = threading.Barrier(2)
    outcomes = []

    def worker():
        try:
            barrier.wait()
            outcomes.append(deliver(notification))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(receiver.received) == 1
    assert sorted(outcomes, key=str) == [None, State.DELIVERED]
    notification.refresh_from_db()
    assert (notification.state, notification.attempt_count) == (State.DELIVERED, 1)


# --- endpoints: caps, turns, health --------------------------------------------------------


def test_an_endpoint_gets_no_more_than_its_cap_in_flight(make_notification, outbox_settings):
    """With a cap of 2 and 5 due, a claim takes 2; while those are in flight, none more."""
    outbox_settings.NOTIFY_ENDPOINT_MAX_IN_FLIGHT = 2
    for _ in range(5):
        make_notification()

    assert len(deliveries_claim(limit=10)) == 2
    assert deliveries_claim(limit=10) == []
    assert Notification.objects.filter(state=State.SENDING).count() == 2


def test_endpoints_are_served_in_turn(make_notification, outbox_settings):
    """A backlog on one endpoint does not keep another waiting: the least recently served
    endpoint with due work goes first, each up to its cap."""
    outbox_settings.NOTIFY_ENDPOINT_MAX_IN_FLIGHT = 3
    with Receiver() as busy, Receiver() as quiet:
        for _ in range(20):
            make_notification(url=busy.url)
        make_notification(url=quiet.url)
        served = {busy.url: timezone.now(), quiet.url: timezone.now() - timedelta(days=1)}
        for url, last_claimed_at in served.items():
            Endpoint.objects.filter(origin=url.removesuffix("/notify")).update(
                last_claimed_at=last_claimed_at
            )

        claimed = deliveries_claim(limit=4)

    origins = [c.url for c in claimed]
    assert origins[0] == quiet.url
    assert origins.count(busy.url) == 3


def test_an_endpoint_at_its_cap_is_not_visited_in_turn(
    make_notification, outbox_settings, django_assert_num_queries
):
    """An endpoint with its cap in flight and more due is left out of the turn: a claim
    cycle spends no transaction on it and does not touch its place in the turn."""
    outbox_settings.NOTIFY_ENDPOINT_MAX_IN_FLIGHT = 2
    for _ in range(5):
        make_notification()
    deliveries_claim(limit=10)
    endpoint = Endpoint.objects.get()

    # The turn's query, and on PostgreSQL the clock's (core/clock.py); nothing for the endpoint.
    with django_assert_num_queries(CLOCK_QUERIES + 1):
        assert deliveries_claim(limit=10) == []
    assert Endpoint.objects.get().last_claimed_at == endpoint.last_claimed_at

    Notification.objects.filter(state=State.SENDING)[:1].get().delete()  # one finished
    assert len(deliveries_claim(limit=10)) == 1


def test_a_half_open_endpoint_with_its_probe_in_flight_is_not_visited(
    make_notification, django_assert_num_queries
):
    """Half-open, the cap is the one probe: while it is in flight the endpoint is out of the
    turn too."""
    for _ in range(3):
        make_notification()
    Endpoint.objects.update(state=Endpoint.State.HALF_OPEN, retry_at=timezone.now())
    assert len(deliveries_claim(limit=10)) == 1  # the probe

    with django_assert_num_queries(CLOCK_QUERIES + 1):  # the clock's (if any), the turn's
        assert deliveries_claim(limit=10) == []


def test_a_cap_of_zero_claims_nothing(make_notification, outbox_settings):
    """ENDPOINT_MAX_IN_FLIGHT 0 stops sending; it does not break the claim."""
    outbox_settings.NOTIFY_ENDPOINT_MAX_IN_FLIGHT = 0
    make_notification()

    assert deliveries_claim(limit=10) == []


def test_the_circuit_opens_and_nothing_is_sent_until_the_probe(make_notification, receiver):
    """Five failures in a row open the circuit: due notifications wait, no request goes,
    and the sweeper does not wake anyone for them; once the wait is over one probe goes,
    and its success closes the circuit so the rest follow."""
    receiver.default = Reply(status=500)
    failing = [make_notification() for _ in range(5)]
    assert {deliver(n) for n in failing} == {State.PENDING}
    endpoint = endpoint_of(failing[0])
    assert endpoint.state == Endpoint.State.OPEN
    for notification in failing:
        make_due(notification)

    assert deliveries_run(limit=10) == []
    assert len(receiver.received) == 5

    Endpoint.objects.filter(pk=endpoint.pk).update(retry_at=timezone.now())
    receiver.default = Reply(status=204)
    [probe] = deliveries_run(limit=10)
    assert probe.state == State.DELIVERED
    assert endpoint_of(failing[0]).state == Endpoint.State.CLOSED
    assert {r.state for r in deliveries_run(limit=10)} == {State.DELIVERED}


def test_disabled_after_failing_for_days_and_everyone_is_told(
    make_notification, receiver, django_capture_on_commit_callbacks, settings
):
    """An endpoint failing since before ENDPOINT_DISABLE_AFTER is disabled by its next
    failure: staff get an email, the sender's ops URL an endpoint.disabled notification,
    and the endpoint is sent nothing more."""
    settings.ADMINS = [("Ops", "ops@example.com")]
    with Receiver() as ops:
        OPS_URLS["shop"] = ops.url
        receiver.default = Reply(status=500)
        notification = make_notification()
        Endpoint.objects.filter(pk=notification.endpoint_id).update(
            failing_since=timezone.now() - timedelta(days=6)
        )

        announce = mock.patch.object(
            tasks.announce_endpoint_disabled,
            "apply_async",
            side_effect=lambda args: alerts.endpoint_disabled_announce(endpoint_id=args[0]),
        )
        with announce, django_capture_on_commit_callbacks(execute=True):
            deliver(notification)

    OPS_URLS.clear()
    endpoint = endpoint_of(notification)
    assert (endpoint.state, endpoint.disabled_at is not None) == (Endpoint.State.DISABLED, True)
    assert len(mail.outbox) == 1 and endpoint.origin in mail.outbox[0].subject
    alert = Notification.objects.get(event_type="endpoint.disabled")
    assert alert.target_url == ops.url
    assert json.loads(alert.body)["data"]["origin"] == endpoint.origin
    make_due(notification)
    assert deliver(notification) is None


def test_re_enable_and_recover_resend_what_was_not_delivered_since(
    make_notification, dispatch_apply_async, django_capture_on_commit_callbacks
):
    """Recover re-enables the endpoint and reschedules its undelivered notifications created
    since the given time (not older ones, not delivered ones, not one in flight)."""
    now = timezone.now()
    old = make_notification(state=State.EXHAUSTED, created_at=now - timedelta(days=3))
    exhausted = make_notification(state=State.EXHAUSTED, created_at=now - timedelta(hours=5))
    waiting = make_notification(next_attempt_at=now + timedelta(hours=2))
    delivered = make_notification(state=State.DELIVERED)
    in_flight = make_notification(state=State.SENDING)
    Endpoint.objects.filter(pk=old.endpoint_id).update(
        state=Endpoint.State.DISABLED, disabled_at=now, consecutive_failures=40
    )

    with django_capture_on_commit_callbacks(execute=True):
        count = services.endpoint_recover(
            endpoint_id=old.endpoint_id, since=now - timedelta(days=1)
        )

    assert count == 2
    endpoint = endpoint_of(old)
    assert (endpoint.state, endpoint.consecutive_failures, endpoint.disabled_at) == (
        Endpoint.State.CLOSED,
        0,
        None,
    )
    states = {n.pk: n.state for n in Notification.objects.all()}
    assert states[exhausted.pk] == states[waiting.pk] == State.PENDING
    assert (states[old.pk], states[delivered.pk], states[in_flight.pk]) == (
        State.EXHAUSTED,
        State.DELIVERED,
        State.SENDING,
    )
    assert dispatch_apply_async.called


# --- sweep --------------------------------------------------------------------------------


def test_sweep_releases_an_orphaned_claim_as_an_abandoned_attempt(
    make_notification, dispatch_apply_async
):
    """A claim older than NOTIFY_CLAIM_TIMEOUT (worker killed) becomes a failed "abandoned"
    attempt and the next attempt is scheduled; a recent claim is left alone."""
    now = timezone.now()
    dead_claim = now - timedelta(minutes=10)
    orphan = make_notification(state=State.SENDING, attempt_count=1, claimed_at=dead_claim)
    in_flight = make_notification(
        state=State.SENDING, attempt_count=1, claimed_at=now - timedelta(seconds=10)
    )

    result = services.notifications_sweep()

    assert result == {"released": 1, "wakes": 0}
    orphan.refresh_from_db()
    assert (orphan.state, orphan.claimed_at) == (State.PENDING, None)
    assert now + timedelta(seconds=14) < orphan.next_attempt_at < now + timedelta(seconds=20)
    attempt = orphan.attempts.get()
    assert (attempt.number, attempt.status_code, attempt.succeeded) == (1, None, False)
    assert attempt.started_at == dead_claim and attempt.error.startswith("abandoned")
    in_flight.refresh_from_db()
    assert in_flight.state == State.SENDING and not in_flight.attempts.exists()
    assert endpoint_of(orphan).attempts_total == 0  # not the endpoint's failure

    make_due(orphan)
    assert deliver(orphan) == State.DELIVERED
    assert list(orphan.attempts.values_list("number", "succeeded")) == [(1, False), (2, True)]


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="SQLite lives in this process: its clock is this host's, there is no other to share",
)
def test_a_host_clock_ahead_neither_releases_fresh_claims_nor_claims_early(
    make_notification, dispatch_apply_async, monkeypatch
):
    """Claims and schedules are timed by the database's clock, not the host's: a sweeper
    whose clock runs three minutes ahead (past NOTIFY_CLAIM_TIMEOUT) leaves a claim made ten
    seconds ago alone, and a worker so skewed does not claim a retry due in a minute."""
    now = database_now()
    in_flight = make_notification(
        state=State.SENDING, attempt_count=1, claimed_at=now - timedelta(seconds=10)
    )
    retry = make_notification(attempt_count=1, next_attempt_at=now + timedelta(minutes=1))
    ahead = timezone.now() + timedelta(minutes=3)
    monkeypatch.setattr(timezone, "now", lambda: ahead)

    assert services.notifications_sweep()["released"] == 0
    assert deliveries_claim(limit=10) == []
    in_flight.refresh_from_db()
    retry.refresh_from_db()
    assert (in_flight.state, retry.state) == (State.SENDING, State.PENDING)


def test_sweep_wakes_workers_only_for_notifications_that_may_go(
    make_notification, dispatch_apply_async, outbox_settings
):
    """One wake-up per CLAIM_BATCH due notifications on serveable endpoints; none for rows
    not yet due, final, or waiting on an open circuit; none at all when nothing is due."""
    outbox_settings.NOTIFY_CLAIM_BATCH = 2
    now = timezone.now()
    for _ in range(3):
        make_notification(next_attempt_at=now - timedelta(minutes=1))
    make_notification(next_attempt_at=now + timedelta(hours=1))
    make_notification(state=State.DELIVERED)
    with Receiver() as down:
        blocked = make_notification(url=down.url)
    Endpoint.objects.filter(pk=blocked.endpoint_id).update(
        state=Endpoint.State.OPEN, retry_at=now + timedelta(minutes=5)
    )

    assert services.notifications_sweep() == {"released": 0, "wakes": 2}
    assert dispatch_apply_async.call_count == 2

    Notification.objects.filter(state=State.PENDING, next_attempt_at__lte=now).update(
        state=State.DELIVERED
    )
    assert services.notifications_sweep()["wakes"] == 0


# --- resend -------------------------------------------------------------------------------


def test_resend_gives_an_exhausted_notification_one_more_attempt(
    make_notification, receiver, django_capture_on_commit_callbacks
):
    """Staff's resend: pending and due now, one wake-up on commit, exactly one more POST;
    failing again leaves it exhausted with no further attempt."""
    notification = make_notification(
        state=State.EXHAUSTED, attempt_count=15, next_attempt_at=timezone.now() - timedelta(days=1)
    )
    receiver.default = Reply(status=500)

    with django_capture_on_commit_callbacks() as callbacks:
        assert services.notification_resend(notification_id=notification.pk) is True

    assert len(callbacks) == 1
    assert deliver(notification) == State.EXHAUSTED
    assert deliver(notification) is None
    assert len(receiver.received) == 1
    assert list(notification.attempts.values_list("number", flat=True)) == [16]


def test_resend_that_succeeds_delivers(make_notification):
    notification = make_notification(state=State.EXHAUSTED, attempt_count=15)

    services.notification_resend(notification_id=notification.pk)

    assert deliver(notification) == State.DELIVERED


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


# --- what real receivers and deploys did to it (review findings) ---------------------------


def test_a_reply_with_nul_bytes_is_recorded(make_notification, receiver):
    """A receiver answering ``ok\\x00`` (a gzip body would do too): PostgreSQL refuses NUL
    in text, so the excerpt keeps a replacement character instead and the attempt is
    recorded like any other."""
    notification = make_notification()
    receiver.default = Reply(status=400, body=b"ok\x00!")

    assert deliver(notification) == State.PENDING

    assert notification.attempts.get().response_excerpt == "ok\ufffd!"


def test_retry_after_is_honoured_on_a_ladder_without_a_window(
    make_notification, receiver, outbox_settings
):
    """An explicit ladder has no window: Retry-After still moves the next attempt (to 15 s
    of a 10 s step here)."""
    outbox_settings.NOTIFY_RETRY_SCHEDULE = "10s,10s"
    notification = make_notification()
    receiver.default = Reply(status=429, headers={"Retry-After": "15"})
    before = timezone.now()

    deliver(notification)

    notification.refresh_from_db()
    assert 15 <= (notification.next_attempt_at - before).total_seconds() < 17


def test_endpoints_at_their_cap_never_keep_the_front(make_notification, outbox_settings):
    """Endpoints with no room (their cap held by requests in flight) are not in the turn at
    all: with room for two endpoints per round, a fresh endpoint behind three full ones is
    served in the first round."""
    outbox_settings.NOTIFY_CLAIM_BATCH = 2
    outbox_settings.NOTIFY_ENDPOINT_MAX_IN_FLIGHT = 1
    with Receiver() as a, Receiver() as b, Receiver() as c, Receiver() as fresh:
        for url in (a.url, b.url, c.url):
            make_notification(url=url, state=State.SENDING, claimed_at=timezone.now())
            make_notification(url=url)
        waiting = make_notification(url=fresh.url)
        Endpoint.objects.filter(pk=waiting.endpoint_id).update(last_claimed_at=timezone.now())

        claimed = deliveries_claim(limit=2)

    assert [c.url for c in claimed] == [fresh.url]


def test_a_notification_written_without_an_endpoint_is_adopted(
    make_notification, receiver, dispatch_apply_async
):
    """The previous release, still running during a rolling deploy, writes rows without an
    endpoint: a hint or the sweeper gives them theirs, and they are delivered."""
    hinted, swept = make_notification(), make_notification()
    Notification.objects.update(endpoint=None)

    assert deliver(hinted) == State.DELIVERED
    services.notifications_sweep()

    assert Notification.objects.get(pk=swept.pk).endpoint_id == hinted.endpoint_id
    assert deliver(swept) == State.DELIVERED


def test_each_attempt_records_the_headers_the_receiver_got(make_notification, receiver):
    """The attempt row keeps the request headers as sent (for the admin's attempt log):
    the Standard Webhooks ones, Content-Type and User-Agent, equal to what arrived; an
    attempt that could not be signed sent nothing and records none."""
    notification = make_notification()
    unsigned = make_notification(sender_key="nobody")

    deliver(notification)
    deliver(unsigned)

    [request] = receiver.received
    recorded = notification.attempts.get().request_headers
    names = ["webhook-id", "webhook-timestamp", "webhook-signature", "Content-Type", "User-Agent"]
    assert {name: recorded[name] for name in names} == {
        name: request.headers[name] for name in names
    }
    assert recorded["webhook-id"] == notification.webhook_id
    assert SECRET not in str(recorded)
    assert unsigned.attempts.get().request_headers == {}
