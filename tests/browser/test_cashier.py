"""The sandbox cashier in a browser: an order past PAYMENTS_ORDER_TTL cannot be paid, and the
payer is told so on the page."""

from datetime import timedelta

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from payments.models import RechargeOrder

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("deliver_apply_async")]


def test_paying_an_expired_order_says_so_and_shows_it_failed(
    page, screenshot, order_factory, settings
):
    """An order older than its time-to-live: Pay answers 409 with "This order has expired;
    it was not paid.", the status reads Failed, and only the way back to the merchant is
    left (no Pay button). The order is failed as expired."""
    order = order_factory(amount=1234, currency="CNY")
    RechargeOrder.objects.filter(pk=order.pk).update(
        created_at=order.created_at - timedelta(seconds=settings.PAYMENTS_ORDER_TTL + 1)
    )
    assert page.goto(reverse("payments:cashier", kwargs={"tx_no": order.tx_no})).status == 200
    expect(page.get_by_text("12.34 CNY")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Pending")

    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Pay", exact=True).click()

    assert navigation.value.status == 409
    expect(page.get_by_text("This order has expired; it was not paid.")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Failed")
    expect(page.get_by_role("button", name="Pay", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Back to the merchant")).to_be_visible()
    screenshot()
    order.refresh_from_db()
    assert (order.status, order.failure_reason) == (RechargeOrder.Status.FAILED, "expired")
