"""The merchant portal in a browser, at desktop and phone width, as a merchant's admin logged
in through /portal/login/: finding an order by its out_trade_no and resending its exhausted
notification from the order's page (every attempt shown), resending several from the list,
and rolling the webhook secret, shown once.

The delivery message the resend publishes after commit is kept from the broker (a mock of
``deliver.apply_async``); pages, forms and services run as in production."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, expect

from notifications.models import DeliveryAttempt, Endpoint, Notification
from notifications.selectors import notifications_for_subject
from payments import services
from payments.models import MerchantMember
from tests.browser.conftest import CONTEXTS, SCREENSHOTS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("fast_password_hashing", "deliver_apply_async"),
]
PASSWORD = "shop-portal-password-9"
# (error, status code, ms) of the three failed attempts of each paid order's notification.
ATTEMPTS = [
    ("timeout after 8 s", None, 8000),
    ("", 503, 412),
    ("", 500, 95),
]


@pytest.fixture
def screenshot_step(page, width, request):
    """``screenshot_step("resent")``: as ``screenshot()``, for one step of a longer test, saved
    as ``var/screenshots/<test>-<step>-<width>.png`` (as tests/browser/test_endpoints_admin.py
    does; a candidate for conftest.py)."""

    def save(step: str):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{request.node.originalname}-{step}-{width}.png"
        page.screenshot(path=path, full_page=not CONTEXTS[width].get("is_mobile"))
        return path

    return save


@pytest.fixture
def shop(merchant, transactional_db):
    """ "shop", an admin member of ``merchant``."""
    user = get_user_model().objects.create_user("shop", password=PASSWORD)
    return MerchantMember.objects.create(user=user, merchant=merchant, role="admin")


@pytest.fixture
def exhausted(order_factory):
    """``exhausted("R1001")``: an order of ``merchant`` paid, its notification exhausted
    after the three failed ``ATTEMPTS``."""

    def make(out_trade_no: str):
        order = order_factory(out_trade_no=out_trade_no, amount=50000)
        services.recharge_order_pay(tx_no=order.tx_no)
        notification = notifications_for_subject(subject=order.tx_no).get()
        started = timezone.now() - timedelta(minutes=30)
        for number, (error, status_code, ms) in enumerate(ATTEMPTS, start=1):
            DeliveryAttempt.objects.create(
                notification=notification,
                number=number,
                started_at=started + timedelta(minutes=5 * number),
                duration_ms=ms,
                status_code=status_code,
                error=error,
                response_excerpt="" if status_code is None else "upstream unavailable",
                succeeded=False,
            )
        Notification.objects.filter(pk=notification.pk).update(
            state=Notification.State.EXHAUSTED, attempt_count=len(ATTEMPTS)
        )
        return order

    return make


def portal_log_in(page: Page) -> None:
    """The portal's log-in form, filled in and submitted; lands on the orders list."""
    assert page.goto("/portal/").status == 200  # the log-in form, after a redirect
    page.get_by_label("Username").fill("shop")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    expect(page.locator("#orders")).to_be_visible()


def fits_the_screen(page: Page, width: int) -> bool:
    """Nothing on the page makes it wider than the window (only boxes scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_a_merchant_finds_an_order_and_resends_it_from_its_page(
    page, width, screenshot, screenshot_step, shop, exhausted
):
    """Search by out_trade_no lists that order alone (500.00 CNY, exhausted); its page shows
    the webhook-id, the body as sent and the three attempts with their errors; Resend says
    one notification was scheduled, and the notification is pending and due now. The pages
    fit the phone's screen."""
    order = exhausted("R1001")
    exhausted("R1002")
    notification = notifications_for_subject(subject=order.tx_no).get()
    portal_log_in(page)

    page.get_by_label("Search").fill("R1001")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#orders tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("500.00 CNY")
    expect(rows).to_contain_text("exhausted")
    assert fits_the_screen(page, width)
    screenshot_step("search")
    with page.expect_navigation():
        rows.get_by_role("link", name="R1001").click()

    expect(page.get_by_role("heading", name="Order R1001")).to_be_visible()
    expect(page.get_by_text(notification.webhook_id).first).to_be_visible()
    expect(page.locator("pre")).to_contain_text('"out_trade_no": "R1001"')
    attempts = page.locator("table.attempts tbody tr")
    expect(attempts).to_have_count(3)
    expect(attempts.nth(0)).to_contain_text("timeout after 8 s")
    expect(attempts.nth(1)).to_contain_text("503")
    assert fits_the_screen(page, width)
    screenshot()
    before = timezone.now()
    with page.expect_navigation():
        page.get_by_role("button", name="Resend").click()

    expect(page.locator(".messages .success")).to_have_text(
        "Scheduled 1 notification(s) of 1 order(s) to be sent again now."
    )
    expect(page.get_by_role("heading", name="Order R1001")).to_be_visible()
    screenshot_step("resent")
    notification.refresh_from_db()
    assert notification.state == Notification.State.PENDING
    assert before <= notification.next_attempt_at <= timezone.now()
    other = Notification.objects.exclude(pk=notification.pk).get()
    assert other.state == Notification.State.EXHAUSTED


def test_a_merchant_resends_the_orders_it_ticks(page, screenshot_step, shop, exhausted):
    """Tick two of three orders in the list, Resend selected: two notifications scheduled,
    the third left exhausted."""
    orders = [exhausted(f"R200{n}") for n in range(3)]
    portal_log_in(page)

    for order in orders[:2]:
        page.get_by_label(f"Select {order.out_trade_no}").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Resend selected").click()

    expect(page.locator(".messages .success")).to_have_text(
        "Scheduled 2 notification(s) of 2 order(s) to be sent again now."
    )
    screenshot_step("resent")
    states = {
        n.subject: n.state
        for n in Notification.objects.filter(subject__in=[o.tx_no for o in orders])
    }
    assert [states[o.tx_no] for o in orders] == ["pending", "pending", "exhausted"]


def test_a_merchant_rolls_its_webhook_secret_and_sees_it_once(
    page, width, screenshot, screenshot_step, shop, merchant
):
    """Credentials → Roll webhook secret: the new secret and until when the old one also
    signs; back on Credentials neither secret is on the page, and the overlap is named."""
    old_secret = merchant.webhook_secret
    portal_log_in(page)
    page.get_by_role("link", name="Credentials").click()
    expect(page.get_by_text(merchant.app_id)).to_be_visible()

    with page.expect_navigation():
        page.get_by_role("button", name="Roll webhook secret").click()

    merchant.refresh_from_db()
    assert merchant.webhook_secret != old_secret
    assert merchant.previous_webhook_secret == old_secret
    expect(page.get_by_role("heading", name="Your new webhook secret")).to_be_visible()
    expect(page.locator("#shown-once")).to_have_text(merchant.webhook_secret)
    until = f"{merchant.previous_secret_expires_at:%Y-%m-%d %H:%M:%S} UTC"
    expect(page.get_by_text(f"also signs every notification until {until}")).to_be_visible()
    assert fits_the_screen(page, width)
    screenshot()

    page.get_by_role("link", name="Back to credentials").click()
    expect(page.get_by_text(f"also signs until {until}")).to_be_visible()
    content = page.content()
    assert merchant.webhook_secret not in content and old_secret not in content
    screenshot_step("after")


def test_a_merchant_recovers_its_disabled_endpoint_and_reads_the_guide(
    page, width, screenshot, screenshot_step, shop, merchant, exhausted, settings
):
    """Endpoints: the disabled endpoint with its success rate; Recover since an hour ago
    re-enables it and schedules its exhausted notification. The guide names the merchant's
    app_id and the API's URL. Both fit the phone's screen."""
    notification = notifications_for_subject(subject=exhausted("R3001").tx_no).get()
    Endpoint.objects.update(
        state=Endpoint.State.DISABLED,
        disabled_at=timezone.now(),
        failing_since=timezone.now() - timedelta(days=5),
        attempts_total=40,
        failures_total=30,
    )
    settings.PAYMENTS_API_URL = "http://127.0.0.1:8001"
    portal_log_in(page)
    page.get_by_role("link", name="Endpoints").click()
    card = page.locator(".endpoint")
    expect(card).to_contain_text("Disabled")
    expect(card).to_contain_text("25.0% of 40 attempt(s)")
    assert fits_the_screen(page, width)
    screenshot_step("disabled")

    since = timezone.now() - timedelta(hours=1)
    card.get_by_label("Resend undelivered since (UTC)").fill(f"{since:%Y-%m-%dT%H:%M}")
    with page.expect_navigation():
        card.get_by_role("button", name="Recover").click()

    expect(page.locator(".messages .success")).to_have_text(
        "Re-enabled; 1 undelivered notification(s) scheduled to be sent now."
    )
    expect(card).to_contain_text("Healthy")
    screenshot()
    notification.refresh_from_db()
    assert notification.state == Notification.State.PENDING

    page.get_by_role("link", name="Integration guide").click()
    expect(page.get_by_text(merchant.app_id)).to_be_visible()
    expect(
        page.get_by_text("curl -sS -X POST http://127.0.0.1:8001/api/payments/recharges/")
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Signature (Standard Webhooks)")).to_be_visible()
    assert fits_the_screen(page, width)
    screenshot_step("guide")
