"""The wallet's home page in a browser: a user with ACCOUNTS_RECHARGE_PENDING_MAX recharges
pending submits the recharge form and is told why it is refused, with nothing started."""

import pytest
import responses
from playwright.sync_api import expect

from accounts.models import Recharge

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def payments_api(settings, fresh_throttles):
    """The payments API, mocked with no answer at all: the test shows it is never called.
    (``responses`` patches ``requests`` for the whole process, the live server included.)"""
    settings.ACCOUNTS_PAYMENTS_API_URL = "https://payments.example"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def test_the_pending_cap_is_explained_on_the_home_page(
    page, screenshot, user, recharge_factory, payments_api, settings
):
    """At the cap, Recharge answers the home page again with 409 and the reason, the amount
    still typed in, the same recharges listed; no Recharge is written, payments not called."""
    limit = settings.ACCOUNTS_RECHARGE_PENDING_MAX
    for _ in range(limit):
        recharge_factory()
    page.goto("/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("alice-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#balance")).to_have_text("0.00 CNY")

    page.get_by_label("Amount (CNY)").fill("25.00")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Recharge").click()

    assert navigation.value.status == 409
    expect(
        page.get_by_text(f"You already have {limit} recharges waiting for payment")
    ).to_be_visible()
    expect(page.get_by_label("Amount (CNY)")).to_have_value("25.00")
    expect(page.locator("#history .status").filter(has_text="Pending")).to_have_count(limit)
    screenshot()
    assert Recharge.objects.count() == limit
    assert len(payments_api.calls) == 0
