"""The staff dashboard on the admin index, in a browser, as a superuser logged in through
/admin/login/, over a day of realistic deliveries: most endpoints answer in tens of
milliseconds, one slows down for a few hours and another fails for two (timeouts and 5xx).

Desktop width only: the admin is staff's desktop tool (its phone layout is Django's own).
"""

import random
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, expect

from notifications.models import DeliveryAttempt, Endpoint, Notification
from tests.browser.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]
State = Notification.State
PASSWORD = "support-staff-password-9"
HOURS = 24


@pytest.fixture
def width() -> int:
    """1280 only (see the module docstring)."""
    return 1280


def a_day_of_deliveries(now) -> None:
    """About 2,400 attempts over the last ``HOURS`` hours to three endpoints, seeded: the
    ``slow`` one answers in seconds from 9 to 5 hours ago, the ``down`` one times out or
    answers 503 from 14 to 12 hours ago; a few notifications wait to be retried, two are
    exhausted."""
    rng = random.Random(12)
    endpoints = {
        name: Endpoint.objects.create(sender_key=name, origin=f"https://{name}.example:443")
        for name in ("shop", "slow", "down")
    }
    Endpoint.objects.filter(sender_key="down").update(state=Endpoint.State.OPEN)
    rows = []
    for hours_ago in range(HOURS):
        for _ in range(rng.randint(70, 130)):
            name = rng.choice(["shop", "shop", "slow", "down"])
            started = now - timedelta(hours=hours_ago, seconds=rng.uniform(0, 3600))
            ok, status, ms = True, 204, round(rng.lognormvariate(4.0, 0.6))
            if name == "slow" and 5 <= hours_ago <= 9:
                ms = round(rng.lognormvariate(7.3, 0.5))
            if name == "down" and 12 <= hours_ago <= 14:
                ok, status, ms = False, rng.choice([503, None]), 0
                ms = 10000 if status is None else round(rng.lognormvariate(5, 0.4))
            rows.append((endpoints[name], started, ok, status, min(ms, 10000)))
    notifications = Notification.objects.bulk_create(
        Notification(
            sender_key=endpoint.sender_key,
            subject=f"TX{i}",
            event_type="recharge.succeeded",
            target_url=f"{endpoint.origin}/notify",
            endpoint=endpoint,
            body="{}",
            state=State.DELIVERED if ok else State.PENDING,
            next_attempt_at=now + timedelta(minutes=rng.randint(-4, 40)),
            created_at=started,
        )
        for i, (endpoint, started, ok, _, _) in enumerate(rows)
    )
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            notification=notification,
            number=1,
            started_at=started,
            duration_ms=ms,
            status_code=status,
            error="" if ok else ("timeout after 10 s" if status is None else f"HTTP {status}"),
            succeeded=ok,
        )
        for notification, (_, started, ok, status, ms) in zip(notifications, rows, strict=True)
    )
    stuck = Notification.objects.filter(state=State.PENDING).order_by("created_at")[:2]
    Notification.objects.filter(pk__in=[n.pk for n in stuck]).update(state=State.EXHAUSTED)


def test_the_dashboard_shows_a_day_of_delivery(page: Page, screenshot, transactional_db):
    """Log in to the admin: the index shows the success-rate and latency charts, the backlog
    (the exhausted two among it), endpoints by health and the hourly figures."""
    get_user_model().objects.create_superuser("support", "s@example.com", password=PASSWORD)
    a_day_of_deliveries(timezone.now())

    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("support")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    dashboard = page.locator("#delivery-dashboard")
    expect(
        dashboard.get_by_role("heading", name="Notification delivery, last 24 hours")
    ).to_be_visible()
    expect(dashboard.get_by_role("img", name="Success rate per hour")).to_be_visible()
    expect(dashboard.get_by_role("img", name="Attempt latency per hour")).to_be_visible()
    expect(dashboard.locator('[data-figure="exhausted"]')).to_have_text("2")
    expect(dashboard.locator('[data-endpoints="Failing (circuit open)"]')).to_have_text("1")
    assert dashboard.locator("svg rect.failing").count() >= 2  # the hours the "down" one failed
    screenshot()
    dashboard.screenshot(path=SCREENSHOTS / "staff-dashboard.png")  # docs/screenshots/
    dashboard.get_by_text("Hourly figures").click()
    expect(dashboard.locator("#hourly-figures tbody tr")).to_have_count(HOURS)
