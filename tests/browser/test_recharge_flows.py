"""A user tops up in a browser, at a desktop's and a phone's width: pays, declines, or
leaves the cashier and comes back; and logs out by typing /logout/.

Both sides run in ``live_server`` and talk over real HTTP as in production: the wallet
creates the order through the payments API as the test merchant, the browser follows the
cashier_url and the return_url, and the notification is delivered to accounts' notify_url
by the delivery code itself (``deliveries_run``), called by the test where a worker would
run it. No page may be wider than the screen.
"""

import threading

import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from accounts.models import Recharge
from notifications.delivery import deliveries_run

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def wallet(settings, live_server, merchant_credentials, account, fresh_throttles):
    """The wallet and payments both at ``live_server``: accounts is the test merchant, its
    cashier, return and notify URLs on the live server's host (an allowed host)."""
    settings.ACCOUNTS_PAYMENTS_API_URL = live_server.url
    settings.ACCOUNTS_PAYMENTS_API_KEY = merchant_credentials.api_key
    settings.PAYMENTS_PUBLIC_URL = live_server.url
    settings.ACCOUNTS_PUBLIC_URL = live_server.url
    return account


@pytest.fixture
def deliver(deliver_apply_async):
    """``deliver()`` sends every notification due, as a worker would, and waits for it.

    On a thread of its own: the delivery client runs an asyncio loop, and this thread's is
    Playwright's. The broker is never reached (``deliver_apply_async``)."""

    def run() -> None:
        def send() -> None:
            try:
                deliveries_run(limit=10)
            finally:
                connection.close()

        worker = threading.Thread(target=send)
        worker.start()
        worker.join(timeout=30)

    return run


def log_in(page: Page) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#balance")).to_be_visible()


# The heights of the page's visible buttons and links, in CSS pixels.
TAP_TARGET_HEIGHTS = """Array.from(document.querySelectorAll("button, a"))
    .filter(element => element.offsetParent !== null)
    .map(element => [element.textContent.trim(), element.getBoundingClientRect().height])"""


def assert_fits(page: Page, width: int) -> None:
    """Nothing on the page is wider than the window (no sideways scrolling), and every
    button and link is at least 44 px high, a finger's tap target."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    small = [(text, height) for text, height in page.evaluate(TAP_TARGET_HEIGHTS) if height < 44]
    assert small == []


def start_recharge(page: Page, width: int, amount: str) -> None:
    """From the wallet, top up ``amount`` and land on the cashier, which names the merchant
    and the amount and counts down to the order's expiry."""
    assert_fits(page, width)
    page.get_by_label("Amount (CNY)").fill(amount)
    page.get_by_role("button", name="Recharge").click()
    expect(page.locator("#merchant")).to_have_text("Test wallet")
    expect(page.get_by_text(f"{amount} CNY")).to_be_visible()
    expect(page.locator("#time-left")).to_contain_text(" left.")
    expect(page.get_by_text("Pay before")).to_be_visible()
    assert_fits(page, width)


def test_pay_flow(page, width, screenshot, wallet, deliver):
    """Wallet → amount → cashier → Pay → the status page, pending until the notification
    arrives, then "Succeeded" by itself; the wallet shows the new balance."""
    log_in(page)
    start_recharge(page, width, "25.00")
    screenshot("cashier")

    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.locator("#status")).to_have_text("Pending")
    deliver()

    expect(page.locator("#status")).to_have_text("Succeeded", timeout=10_000)
    expect(page.get_by_role("link", name="Continue to pay")).to_have_count(0)
    assert_fits(page, width)
    screenshot("status")
    page.get_by_role("link", name="Back to your wallet").click()
    expect(page.locator("#balance")).to_have_text("25.00 CNY")
    expect(page.locator("#history .status")).to_have_text(["Succeeded"])
    assert_fits(page, width)
    screenshot("wallet")


def test_decline_flow(page, width, screenshot, wallet, deliver):
    """Decline at the cashier: back on the status page, "Declined" once notified, and the
    balance unchanged."""
    log_in(page)
    start_recharge(page, width, "7.50")

    page.get_by_role("button", name="Decline").click()
    deliver()

    expect(page.locator("#status")).to_have_text("Declined", timeout=10_000)
    expect(page.get_by_text("Nothing was charged.")).to_be_visible()
    assert_fits(page, width)
    screenshot()
    page.get_by_role("link", name="Back to your wallet").click()
    expect(page.locator("#balance")).to_have_text("0.00 CNY")


def test_abandon_flow(page, width, screenshot, wallet, deliver):
    """The user leaves the cashier unpaid and comes back through the wallet: the recharge
    is pending, with "Continue to pay" back to the same cashier, where Cancel payment ends
    it: "Cancelled" once notified."""
    log_in(page)
    start_recharge(page, width, "12.34")
    cashier = page.url
    page.goto("/")

    page.locator("#history a").filter(has_text="Pending").click()
    expect(page.locator("#status")).to_have_text("Pending")
    expect(page.get_by_text("this page updates itself")).to_be_visible()
    assert_fits(page, width)
    screenshot("pending")
    page.get_by_role("link", name="Continue to pay").click()
    assert page.url == cashier
    page.get_by_role("button", name="Cancel payment").click()
    deliver()

    expect(page.locator("#status")).to_have_text("Cancelled", timeout=10_000)
    expect(page.get_by_role("link", name="Continue to pay")).to_have_count(0)
    screenshot("cancelled")
    recharge = Recharge.objects.get()
    assert (recharge.status, recharge.failure_reason) == (Recharge.Status.FAILED, "cancelled")


def test_logout_by_get(page, width, screenshot, wallet):
    """Typing /logout/ shows a page with one Log out button (not a blank 405); pressing it
    logs out, and the wallet then asks to log in."""
    log_in(page)

    assert page.goto("/logout/").status == 200
    expect(page.get_by_role("button", name="Log out")).to_have_count(1)
    assert_fits(page, width)
    screenshot()
    page.get_by_role("button", name="Log out").click()

    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert page.goto("/").url.endswith("/login/?next=/")
