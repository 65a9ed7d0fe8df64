"""A disabled endpoint in the admin, in a browser, as a support-staff superuser logged in
through /admin/login/: the banner naming it on every admin page, its health in the Endpoint
changelist, and the recover action (its "since" form) that re-enables it and resends what
it has not acknowledged since then, after which the banner is gone.

The delivery messages the on-commit callbacks publish (``deliver`` for each notification
created, ``dispatch`` to wake a worker after the recover) are kept from the broker: mocks of
``apply_async`` only; the admin, its forms and the services run as in production."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import formats, timezone
from playwright.sync_api import Page, expect

from core.admin import when
from notifications.models import Endpoint, Notification
from tests.helpers import shop_notifications

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("fast_password_hashing", "deliver_apply_async"),
]
State = Notification.State
PASSWORD = "support-staff-password-9"
ORIGIN = "https://shop.example:443"
CHANGELIST = reverse("admin:notifications_endpoint_changelist")
RECOVER = "Recover: re-enable and resend undelivered since…"
# The Endpoint changelist's cells (by column) for the disabled endpoint; "" filled in per test.
EXPECTED_CELLS = {
    "origin": ORIGIN,
    "sender_key": "",
    "state": "Disabled",
    "success_rate": "— · 25.0% of 200",  # no attempt in a window yet · all time
    "consecutive_failures": "200",
    "failing_since": "",
    "retry_at": "-",
    "undelivered": "3",
    "last_success_at": "-",
}


@pytest.fixture
def dispatch_apply_async():
    """``notifications.tasks.dispatch.apply_async`` (the wake after a re-enable) as a mock."""
    with mock.patch("notifications.tasks.dispatch.apply_async") as apply_async:
        yield apply_async


@pytest.fixture
def support(transactional_db):
    return get_user_model().objects.create_superuser(
        "support", "support@example.com", password=PASSWORD
    )


@pytest.fixture
def disabled_endpoint(merchant, transactional_db) -> Endpoint:
    """A disabled endpoint, failing for five days, with four notifications: TX0 delivered;
    created within the hour and undelivered, TX1 exhausted and TX2 pending but due only in
    six hours; TX3 exhausted, created two days ago."""
    notifications = shop_notifications(merchant, 4)
    now = timezone.now()
    by_pk = Notification.objects.filter
    by_pk(pk=notifications[0].pk).update(state=State.DELIVERED)
    by_pk(pk=notifications[1].pk).update(state=State.EXHAUSTED)
    by_pk(pk=notifications[2].pk).update(next_attempt_at=now + timedelta(hours=6))
    by_pk(pk=notifications[3].pk).update(state=State.EXHAUSTED, created_at=now - timedelta(days=2))
    Endpoint.objects.update(
        state=Endpoint.State.DISABLED,
        disabled_at=now - timedelta(minutes=5),
        failing_since=now - timedelta(days=5),
        consecutive_failures=200,
        attempts_total=200,
        failures_total=150,
    )
    return Endpoint.objects.get()


def admin_log_in(page: Page, username: str, password: str) -> None:
    """The admin's own log-in form, filled in and submitted; lands on the admin index."""
    assert page.goto("/admin/login/").status == 200
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def banner(endpoint: Endpoint) -> str:
    return (
        f"Endpoint {ORIGIN} ({endpoint.sender_key}) is disabled since "
        f"{when(endpoint.disabled_at)}: its notifications are not being sent."
    )


def shown(value) -> str:
    """A date and time as the admin's changelist shows it (Django's DATETIME_FORMAT)."""
    return formats.localize(timezone.template_localtime(value))


def test_a_disabled_endpoint_is_named_on_every_admin_page_with_its_health(
    page, screenshot, support, disabled_endpoint
):
    """The banner is at the top of the index, an app's page, changelists and change pages,
    of this app and of others; the Endpoint changelist shows its state, success rate,
    failures, since when, and its undelivered count linking to those notifications (the
    last columns only once the table is scrolled sideways, at 1280 px too)."""
    admin_log_in(page, "support", PASSWORD)
    warning = page.locator(".messagelist .error")
    pages = [
        reverse("admin:index"),
        reverse("admin:app_list", kwargs={"app_label": "notifications"}),
        reverse("admin:notifications_notification_changelist"),
        reverse("admin:notifications_endpoint_change", args=[disabled_endpoint.pk]),
        reverse("admin:auth_user_changelist"),
        reverse("admin:payments_merchant_changelist"),
        CHANGELIST,
    ]
    for url in pages:
        assert page.goto(url).status == 200, url
        expect(warning).to_have_text(banner(disabled_endpoint))

    headers = page.locator("#result_list thead th")
    for column in (
        "Origin",
        "Sender key",
        "State",
        "Success rate",
        "Consecutive failures",
        "Failing since",
        "Retry at",
        "Undelivered",
        "Last success at",
    ):
        expect(headers.filter(has_text=column)).to_be_visible()
    row = page.locator("#result_list tbody tr").filter(has_text=ORIGIN)
    expect(row).to_have_count(1)
    cell = {name: row.locator(f".field-{name}") for name in EXPECTED_CELLS}
    expected = {
        **EXPECTED_CELLS,
        "sender_key": disabled_endpoint.sender_key,
        "failing_since": shown(disabled_endpoint.failing_since),
    }
    for name, text in expected.items():
        expect(cell[name]).to_have_text(text)
        expect(cell[name]).to_be_visible()
    expect(cell["undelivered"].get_by_role("link", name="3")).to_have_attribute(
        "href",
        f"{reverse('admin:notifications_notification_changelist')}"
        f"?endpoint={disabled_endpoint.pk}&undelivered=yes",
    )
    screenshot()
    # The table scrolls sideways in its own box, narrower than the table even at 1280 px
    # (the admin's side navigation and the filter take the rest): its last columns, scrolled
    # into view.
    page.locator(".results").evaluate("box => { box.scrollLeft = box.scrollWidth; }")
    expect(cell["last_success_at"]).to_be_in_viewport()
    screenshot("scrolled")


def test_recover_asks_since_when_then_resends_and_the_banner_goes(
    page, screenshot, support, disabled_endpoint, dispatch_apply_async
):
    """Tick the endpoint, choose Recover, Go: the form lists it and asks since when. An hour
    ago, submitted: the admin says it re-enabled 1 endpoint and scheduled 2 notifications;
    the endpoint is healthy again, TX1 and TX2 are pending and due now, TX3 (older) is left
    exhausted and TX0 delivered; a worker is woken; no page shows the banner any more."""
    admin_log_in(page, "support", PASSWORD)
    page.goto(CHANGELIST)
    row = page.locator("#result_list tbody tr").filter(has_text=ORIGIN)
    row.get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option(label=RECOVER)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Go").click()

    assert navigation.value.status == 200
    expect(page.get_by_role("heading", name="Recover endpoints")).to_be_visible()
    expect(
        page.get_by_text(f"{ORIGIN} ({disabled_endpoint.sender_key}) — Disabled")
    ).to_be_visible()
    since_field = page.get_by_label("Since")
    expect(since_field).to_be_visible()
    since = timezone.now() - timedelta(hours=1)
    since_field.fill(f"{since:%Y-%m-%d %H:%M}")
    screenshot("form")
    before = timezone.now()
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Re-enable and resend").click()

    assert navigation.value.status == 200 and navigation.value.url.endswith(CHANGELIST)
    expect(page.locator(".messagelist .success")).to_have_text(
        "Re-enabled 1 endpoint(s) and scheduled 2 undelivered notification(s) to be sent again now."
    )
    expect(page.locator(".messagelist .error")).to_have_count(0)
    expect(row.locator(".field-state")).to_have_text("Healthy (circuit closed)")
    screenshot()

    endpoint = Endpoint.objects.get()
    assert (endpoint.state, endpoint.disabled_at, endpoint.consecutive_failures) == (
        Endpoint.State.CLOSED,
        None,
        0,
    )
    rows = {n.subject: n for n in Notification.objects.all()}
    assert {subject: n.state for subject, n in rows.items()} == {
        "TX0": State.DELIVERED,
        "TX1": State.PENDING,
        "TX2": State.PENDING,
        "TX3": State.EXHAUSTED,
    }
    for subject in ("TX1", "TX2"):
        assert before <= rows[subject].next_attempt_at <= timezone.now(), subject
    assert dispatch_apply_async.called

    page.goto(reverse("admin:index"))
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page.get_by_text("is disabled since")).to_have_count(0)
