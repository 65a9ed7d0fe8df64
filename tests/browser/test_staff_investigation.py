""" "I paid but my balance didn't change", investigated by support staff in a browser (issue
12): the merchant quotes the webhook-id of a notification its endpoint kept refusing; staff
paste it in the Find box on the admin index, open the notification from the results, read
every attempt (the request headers as sent, the response), press "Resend now" and read what
happened. Page loads are counted from the admin index on.

The delivery the resend queues is kept from the broker (a mock of ``apply_async``); the admin
and the services run as in production."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import InboundNotification, Recharge
from notifications.models import DeliveryAttempt, Notification
from payments.services import recharge_order_create, recharge_order_pay
from tests.browser.test_endpoints_admin import admin_log_in
from tests.helpers import order_request

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("fast_password_hashing", "deliver_apply_async"),
]
PASSWORD = "support-staff-password-9"
# Loads from the admin index to the message after "Resend now": the index, the Find results,
# the notification, the notification again after the POST.
MAX_PAGE_LOADS = 4


@pytest.fixture
def support(transactional_db):
    return get_user_model().objects.create_superuser(
        "support", "support@example.com", password=PASSWORD
    )


@pytest.fixture
def refused(merchant, account, transactional_db) -> Notification:
    """A paid order whose notification the merchant's endpoint answered twice with a 500 and
    which ran out of retries; accounts' recharge for it is still pending."""
    order, _ = recharge_order_create(
        **order_request(merchant=merchant, out_trade_no="R-PAID-1", account_no=account.account_no)
    )
    recharge_order_pay(tx_no=order.tx_no)
    Recharge.objects.create(
        account=account, out_trade_no="R-PAID-1", tx_no=order.tx_no, amount=1234, currency="CNY"
    )
    notification = Notification.objects.get(subject=order.tx_no)
    for number in (1, 2):
        DeliveryAttempt.objects.create(
            notification=notification,
            number=number,
            started_at=timezone.now(),
            duration_ms=40 + number,
            status_code=500,
            request_headers={
                "User-Agent": "recharge-notify",
                "Content-Type": "application/json",
                "webhook-id": notification.webhook_id,
                "webhook-timestamp": "1764252202",
                "webhook-signature": "v1,c2lnbmF0dXJl",
            },
            response_excerpt='{"error": "database is down"}',
            error="HTTP 500",
            succeeded=False,
        )
    Notification.objects.filter(pk=notification.pk).update(
        state=Notification.State.EXHAUSTED, attempt_count=2, last_status_code=500
    )
    InboundNotification.objects.create(
        webhook_id=notification.webhook_id, tx_no=order.tx_no, outcome="rejected"
    )
    return notification


def count_loads(page: Page) -> list[str]:
    """The URLs of the pages loaded in ``page`` from now on, in order."""
    loads = []
    page.on("load", lambda loaded: loads.append(loaded.url))
    return loads


def test_staff_find_a_webhook_id_read_its_attempts_and_resend(page, screenshot, support, refused):
    """From the index: the webhook-id in the Find box lists the order first, then the
    notification and accounts' rows; the notification's page shows both attempts with the
    request headers sent and the 500 response; "Resend now" makes it pending and says the
    resend was queued. At most four page loads, index included."""
    admin_log_in(page, "support", PASSWORD)
    loads = count_loads(page)
    with page.expect_navigation():
        page.reload()  # the index, counted: where the investigation starts

    page.get_by_role("searchbox", name="Find").fill(refused.webhook_id)
    with page.expect_navigation():
        page.get_by_role("button", name="Find").click()
    results = page.locator("#find-results tbody tr")
    expect(results.first).to_have_class("find-rechargeorder")
    expect(page.locator("#find-results .find-notification")).to_have_count(1)
    expect(page.locator("#find-results .find-recharge")).to_have_count(1)
    expect(page.locator("#find-results .find-inboundnotification")).to_have_count(1)
    with page.expect_navigation():
        page.locator("#find-results .find-notification a").click()

    attempts = page.locator("table.attempts tbody tr")
    expect(attempts).to_have_count(2)
    expect(attempts.first).to_contain_text(f"webhook-id: {refused.webhook_id}")
    expect(attempts.first).to_contain_text("webhook-signature: v1,c2lnbmF0dXJl")
    expect(attempts.first).to_contain_text('{"error": "database is down"}')
    expect(attempts.first).to_contain_text("HTTP 500")
    expect(page.locator("pre.frozen-body")).to_contain_text('"type": "recharge.succeeded"')
    screenshot()
    with page.expect_navigation():
        page.get_by_role("button", name="Resend now").click()

    expect(page.locator(".messagelist .success")).to_contain_text("Resend queued")
    assert page.url.endswith(reverse("admin:notifications_notification_change", args=[refused.pk]))
    refused.refresh_from_db()
    assert refused.state == Notification.State.PENDING
    assert len(loads) <= MAX_PAGE_LOADS, loads


@pytest.mark.parametrize("width", [1280], indirect=True)
def test_the_columns_that_matter_fit_at_1280(page, support, refused):
    """At 1280 px, no sideways scroll to the columns that matter: an order's status and
    notification state, a notification's state, attempts and last status, a receipt's
    outcome and reason (a phone scrolls the table, as every admin list does)."""
    admin_log_in(page, "support", PASSWORD)
    columns = {
        "admin:payments_rechargeorder_changelist": ["status", "notification_state"],
        "admin:notifications_notification_changelist": ["state", "attempts", "last_status"],
        "admin:accounts_inboundnotification_changelist": ["outcome", "reason"],
        "admin:accounts_recharge_changelist": ["status", "closed_by"],
    }
    for url_name, names in columns.items():
        page.goto(reverse(url_name))
        row = page.locator("#result_list tbody tr").first
        for name in names:
            expect(row.locator(f".field-{name}")).to_be_in_viewport(ratio=1, timeout=500)
