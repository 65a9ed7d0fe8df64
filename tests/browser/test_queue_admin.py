"""A queue target's notification (scheme 1) as staff see it in the admin: where it went
(``queue://accounts``), each publication an attempt with the message headers sent (the
signed ones and ``attempt``), the one the subscriber acknowledged marked so, a later one
still awaiting its acknowledgement.

The publications are real (the test's broker, this process's namespace; the queues deleted
afterwards); the acknowledgement is recorded through the service the worker's reader calls.
"""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from notifications.delivery import attempts_record, deliveries_claim
from notifications.models import Notification
from notifications.publisher import QUEUED, Publisher
from notifications.services import ACKNOWLEDGED, notification_acknowledge
from payments.models import Merchant
from payments.services import recharge_order_create, recharge_order_pay
from tests.browser.test_endpoints_admin import admin_log_in
from tests.helpers import order_request
from tests.test_queue_transport import delete_queues

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("fast_password_hashing", "deliver_apply_async"),
]
PASSWORD = "support-staff-password-9"


@pytest.fixture
def support(transactional_db):
    return get_user_model().objects.create_superuser(
        "support", "support@example.com", password=PASSWORD
    )


def publish(notification: Notification) -> None:
    """Claim and publish its next attempt, and record it, as the worker does (without the
    dispatcher's event loop: Playwright holds this thread's)."""
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
    [claimed] = deliveries_claim(limit=1, hints=[notification.pk])
    started = timezone.now()
    attempts_record([(claimed, Publisher().publish(claimed), started)])


@pytest.fixture
def acknowledged(merchant, transactional_db) -> Notification:
    """A paid order notified on queue://accounts: published twice, the first acknowledged."""
    Merchant.objects.filter(pk=merchant.pk).update(notify_queues=["accounts"])
    order, _ = recharge_order_create(
        **order_request(
            merchant=Merchant.objects.get(pk=merchant.pk), notify_url="queue://accounts"
        )
    )
    recharge_order_pay(tx_no=order.tx_no)
    notification = Notification.objects.get(subject=order.tx_no)
    publish(notification)
    publish(notification)
    notification_acknowledge(webhook_id=notification.webhook_id, number=1)
    yield notification
    delete_queues("accounts")


def test_staff_see_each_publication_and_its_acknowledgement(
    page, screenshot, support, acknowledged
):
    """The notification's page: delivered, to queue://accounts; attempt 1 with its message
    headers and "acknowledged", attempt 2 "queued, awaiting acknowledgement"."""
    admin_log_in(page, "support", PASSWORD)

    url = reverse("admin:notifications_notification_change", args=[acknowledged.pk])
    assert page.goto(url).status == 200

    expect(page.locator("body")).to_contain_text("queue://accounts")
    expect(page.locator("body")).to_contain_text("Delivered (acknowledged)")
    attempts = page.locator("table.attempts tbody tr")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text(f"webhook-id: {acknowledged.webhook_id}")
    expect(attempts.nth(0)).to_contain_text("attempt: 1")
    expect(attempts.nth(0)).to_contain_text(ACKNOWLEDGED)
    expect(attempts.nth(1)).to_contain_text("attempt: 2")
    expect(attempts.nth(1)).to_contain_text(QUEUED)
    screenshot()
