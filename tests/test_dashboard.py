"""The staff dashboard on the admin index: the figures (notifications/stats.py) against rows
made for them, and the page (notifications/templatetags/notifications_dashboard.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from notifications import stats
from notifications.models import DeliveryAttempt, Endpoint, Notification
from notifications.templatetags import notifications_dashboard
from notifications.templatetags.notifications_dashboard import age_text, hours_cached
from tests.helpers import staff_user

NOW = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
State = Notification.State


def notification(state=State.DELIVERED, *, next_attempt_at=NOW) -> Notification:
    endpoint, _ = Endpoint.objects.get_or_create(sender_key="shop", origin="https://a.example")
    return Notification.objects.create(
        sender_key="shop",
        subject="TX",
        event_type="recharge.succeeded",
        target_url="https://a.example/n",
        endpoint=endpoint,
        body="{}",
        state=state,
        next_attempt_at=next_attempt_at,
        created_at=NOW - timedelta(hours=3),
    )


def attempts(started_at: datetime, durations_ms: list[int], *, failed: int = 0) -> None:
    """One notification per attempt; the first ``failed`` of them failed."""
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            notification=notification(),
            number=1,
            started_at=started_at,
            duration_ms=duration,
            status_code=500 if i < failed else 204,
            succeeded=i >= failed,
        )
        for i, duration in enumerate(durations_ms)
    )


def test_hourly_figures_and_percentiles(db):
    """Each hour's attempts, success rate and p50/p95/p99 from the duration buckets: 100
    attempts, 50 in (10, 25] ms, 45 in (100, 250], 4 in (1000, 2500], 1 in (5000, 10000],
    give p50 = 25, p95 = 250, p99 = 2500 ms; hours without attempts have no figures; an
    attempt from before the window is left out."""
    hour = NOW.replace(minute=0)
    attempts(hour + timedelta(minutes=5), [20] * 50 + [200] * 45 + [2000] * 4 + [9000], failed=10)
    attempts(hour - timedelta(hours=2, minutes=-1), [40, 40, 40, 40])
    attempts(hour - timedelta(hours=30), [10])

    hours = stats.attempts_by_hour(now=NOW, hours=24)

    assert len(hours) == 24
    assert hours[0].start == hour - timedelta(hours=23)
    last, two_ago, empty = hours[-1], hours[-3], hours[-2]
    assert (last.start, last.attempts, last.succeeded, last.success_rate) == (hour, 100, 90, 0.9)
    assert last.latency_ms == {50: 25.0, 95: 250.0, 99: 2500.0}
    assert (two_ago.attempts, two_ago.success_rate) == (4, 1.0)
    assert two_ago.latency_ms[50] == pytest.approx(37.5)  # half-way through (25, 50]
    assert (empty.attempts, empty.success_rate, empty.latency_ms) == (0, None, None)
    assert sum(h.attempts for h in hours) == 104


def test_a_quantile_beyond_the_last_bound_is_the_last_bound():
    """Like Prometheus's histogram_quantile: past the last bucket, the last bound."""
    cumulative = [0] * len(stats.LATENCY_BUCKETS_MS)
    assert stats.latency_quantile(0.5, cumulative, 3) == 10000.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45.9, "45 s"), (720, "12 min"), (53664, "14 h 54 min"), (3 * 86400 + 7300, "3 d 2 h")],
)
def test_waits_read_as_people_read_them(seconds, text):
    """The oldest due notification's wait, in the unit that fits."""
    assert age_text(seconds) == text


def test_backlog(db):
    """Due now (pending, next attempt passed), the oldest due one's age, and counts by
    state without the delivered ones."""
    notification(State.PENDING, next_attempt_at=NOW - timedelta(seconds=90))
    notification(State.PENDING, next_attempt_at=NOW - timedelta(seconds=10))
    notification(State.PENDING, next_attempt_at=NOW + timedelta(minutes=5))
    notification(State.EXHAUSTED)
    notification(State.DELIVERED)

    backlog = stats.notifications_backlog(now=NOW)

    assert backlog.due == 2
    assert backlog.oldest_due_age_seconds == 90
    assert backlog.by_state == {"pending": 3, "sending": 0, "exhausted": 1}


def test_the_admin_index_shows_the_dashboard(admin_client):
    """A superuser's admin index carries the dashboard: both charts as inline SVG, the
    backlog and the hourly table, beside the usual app list."""
    notification(State.EXHAUSTED)

    page = admin_client.get(reverse("admin:index")).content.decode()

    assert 'id="delivery-dashboard"' in page
    assert page.count('<svg viewBox="') == 2
    assert '<b data-figure="exhausted">1</b>' in page
    assert 'id="hourly-figures"' in page
    assert 'id="content-main"' in page


def test_staff_who_may_not_view_notifications_see_no_dashboard(client, db):
    """Staff without the notifications view permission get the admin index without it."""
    client.force_login(staff_user("clerk", "view_rechargeorder"))

    page = client.get(reverse("admin:index")).content.decode()

    assert 'id="content-main"' in page
    assert "delivery-dashboard" not in page


def test_hourly_figures_are_reused_for_the_cache_time(db, settings, fresh_throttles):
    """Within ``DASHBOARD_CACHE_SECONDS`` the hourly figures come from the cache (no query
    over the attempts), so an attempt recorded meanwhile shows on the next computation; 0
    computes them every time."""
    settings.DASHBOARD_CACHE_SECONDS = 60
    first = hours_cached(NOW)
    attempts(NOW - timedelta(minutes=5), [40])

    assert hours_cached(NOW) == first  # cached: the new attempt not read yet
    settings.DASHBOARD_CACHE_SECONDS = 0
    assert hours_cached(NOW)[-1].attempts == first[-1].attempts + 1


def test_a_cache_that_is_down_costs_the_computation_not_the_page(
    admin_client, settings, monkeypatch, caplog
):
    """With the cache on and down, each read and write fails: the warning is logged, the
    figures computed, and the admin index renders with the dashboard."""
    calls = []

    def down(*args):
        calls.append(args)
        raise ConnectionError("cache down")

    settings.DASHBOARD_CACHE_SECONDS = 60
    monkeypatch.setattr(notifications_dashboard.cache, "get", down)
    monkeypatch.setattr(notifications_dashboard.cache, "set", down)
    attempts(NOW - timedelta(minutes=5), [40])

    assert hours_cached(NOW)[-1].attempts == 1
    page = admin_client.get(reverse("admin:index"))

    assert len(calls) == 4  # a get and a set for each computation
    assert "dashboard cache unavailable" in caplog.text
    assert page.status_code == 200 and 'id="delivery-dashboard"' in page.content.decode()
