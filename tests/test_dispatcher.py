"""A worker process's dispatcher (notifications/dispatcher.py), in this process, against real
loopback receivers: the fast path, isolation from a hanging endpoint, its own retries, and a
warm stop that records what was in flight."""

import time

import pytest
from django.db import DatabaseError

from notifications import services
from notifications.dispatcher import Dispatcher
from notifications.models import Notification
from tests.receiver import Receiver, Reply

State = Notification.State
SECRET = "whsec_ZGlzcGF0Y2hlci10ZXN0LXNlY3JldC1ub3QtcmVhbA=="
pytestmark = pytest.mark.django_db(transaction=True)


def secrets_for(sender_key: str) -> list[str]:
    return [SECRET]


@pytest.fixture(autouse=True)
def knobs(settings, deliver_apply_async):
    settings.NOTIFY_SECRET_RESOLVER = "tests.test_dispatcher.secrets_for"
    settings.NOTIFY_RETRY_JITTER = 0.0
    settings.NOTIFY_ATTEMPT_DEADLINE = 3.0
    settings.NOTIFY_ENDPOINT_MAX_IN_FLIGHT = 4


@pytest.fixture
def dispatcher():
    running = Dispatcher()
    running.start()
    yield running
    running.stop(timeout=10)


def create(url: str) -> Notification:
    return services.notification_create(
        sender_key="shop", subject="TX", event_type="recharge.succeeded", target_url=url, data={}
    )


def wait_for(predicate, timeout: float) -> float | None:
    """Seconds until ``predicate()`` held, polled every 10 ms; None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def delivered(notifications) -> bool:
    pks = [n.pk for n in notifications]
    return Notification.objects.filter(pk__in=pks, state=State.DELIVERED).count() == len(pks)


def test_a_woken_dispatcher_delivers_a_fresh_notification_at_once(dispatcher):
    with Receiver() as receiver:
        notification = create(receiver.url)

        dispatcher.wake(hint=notification.pk)

        assert wait_for(lambda: delivered([notification]), timeout=5) < 1.0
    assert len(receiver.received) == 1


def test_a_hanging_endpoint_holds_only_its_own_slots(dispatcher):
    """A receiver that never answers, with 40 notifications due: at most its cap (4) are in
    flight, and 20 notifications to a healthy endpoint created meanwhile all arrive within
    a second or two, long before the hanging ones' deadline (3 s) has passed even once."""
    with Receiver(Reply(hang=True)) as hanging, Receiver(Reply(delay=0.05)) as healthy:
        stuck = [create(hanging.url) for _ in range(40)]
        dispatcher.wake()
        assert wait_for(lambda: len(hanging.received) == 4, timeout=5) is not None

        fresh = [create(healthy.url) for _ in range(20)]
        for notification in fresh:
            dispatcher.wake(hint=notification.pk)

        assert wait_for(lambda: delivered(fresh), timeout=10) < 2.5
        assert len(hanging.received) == 4
        sending = Notification.objects.filter(pk__in=[n.pk for n in stuck], state=State.SENDING)
        assert sending.count() == 4


def test_a_retry_it_scheduled_is_made_when_due_without_being_woken(dispatcher, settings):
    """Ladder 1s: the first attempt fails (503), the dispatcher makes the second one about a
    second later on its own (no sweeper, no message)."""
    settings.NOTIFY_RETRY_SCHEDULE = "1s,1s"
    with Receiver(Reply(status=503)) as receiver:
        receiver.replies.append(Reply(status=503))
        receiver.default = Reply(status=204)
        notification = create(receiver.url)

        dispatcher.wake(hint=notification.pk)

        waited = wait_for(lambda: delivered([notification]), timeout=10)
    assert waited is not None and 0.9 < waited < 3
    assert list(notification.attempts.values_list("succeeded", flat=True)) == [False, True]


def test_stop_records_what_is_in_flight_and_claims_nothing_more(settings):
    """A warm stop while 3 requests are in flight (answering after 1 s): they finish and are
    recorded; the notification not yet claimed stays pending for the next worker."""
    settings.NOTIFY_ENDPOINT_MAX_IN_FLIGHT = 3
    running = Dispatcher()
    running.start()
    with Receiver(Reply(delay=1.0)) as receiver:
        notifications = [create(receiver.url) for _ in range(4)]
        running.wake()
        assert wait_for(lambda: len(receiver.received) == 3, timeout=5) is not None

        running.stop(timeout=10)

    states = sorted(Notification.objects.values_list("state", flat=True))
    assert states == [State.DELIVERED] * 3 + [State.PENDING]
    assert len(notifications) == 4 and len(receiver.received) == 3


def test_a_saturated_dispatcher_waits_instead_of_spinning(settings, monkeypatch):
    """Every slot held by a hanging receiver and a retry of its own falling due meanwhile:
    the pump sleeps until a request finishes (it used to spin a core, 68,000 turns a
    second)."""
    settings.NOTIFY_MAX_IN_FLIGHT = 2
    settings.NOTIFY_RETRY_SCHEDULE = "1s,1s"
    turns = []
    real_turn = Dispatcher._turn
    monkeypatch.setattr(Dispatcher, "_turn", lambda self: turns.append(1) or real_turn(self))
    running = Dispatcher()
    running.start()
    try:
        with Receiver(Reply(status=503)) as failing, Receiver(Reply(hang=True)) as hanging:
            retried = create(failing.url)
            running.wake(hint=retried.pk)
            assert wait_for(lambda: len(failing.received) == 1, timeout=5) is not None
            for _ in range(2):
                running.wake(hint=create(hanging.url).pk)
            assert wait_for(lambda: len(hanging.received) == 2, timeout=5) is not None
            before = len(turns)
            time.sleep(2.0)  # the retry falls due here, with no room to send it

            assert len(turns) - before < 50
    finally:
        running.stop(timeout=10)


def test_claims_made_before_a_database_error_are_sent(dispatcher, monkeypatch):
    """The claim of a second endpoint fails: the first endpoint's claims, committed already,
    go out at once instead of waiting, claimed and unsent, for the sweeper."""
    from notifications import delivery

    real_claim = delivery._claim_endpoint
    calls = []

    def failing_second(endpoint_id, **kwargs):
        calls.append(endpoint_id)
        if len(calls) == 2:
            raise DatabaseError("connection lost")
        return real_claim(endpoint_id, **kwargs)

    monkeypatch.setattr(delivery, "_claim_endpoint", failing_second)
    with Receiver() as first, Receiver() as second:
        sent = [create(first.url), create(second.url)]
        dispatcher.wake()

        assert wait_for(lambda: delivered(sent), timeout=10) is not None
    assert len(first.received) == len(second.received) == 1
