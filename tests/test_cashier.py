"""The sandbox cashier page (payments/views.py): show, pay, decline, cancel, CSRF."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from payments.models import Merchant, RechargeOrder
from payments.services import recharge_order_expire

Status = RechargeOrder.Status


@pytest.fixture(autouse=True)
def _no_broker(deliver_apply_async):
    """Paying writes a notification; its on-commit message must not reach Redis."""


@pytest.fixture
def order(order_factory):
    return order_factory(amount=1234, currency="CNY")


def cashier_url(order):
    return reverse("payments:cashier", kwargs={"tx_no": order.tx_no})


def status_of(order):
    return RechargeOrder.objects.values_list("status", flat=True).get(pk=order.pk)


def test_shows_the_order_with_its_formatted_amount(client, order):
    """GET: the merchant's name, the amount as major units with the currency, the order
    numbers, Pay, Decline and Cancel payment; a page laid out for a phone's width."""
    response = client.get(cashier_url(order))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<p class="merchant" id="merchant">Test wallet</p>' in html
    assert "12.34 CNY" in html
    assert order.tx_no in html and order.out_trade_no in html
    assert 'value="pay"' in html and 'value="decline"' in html and 'value="cancel"' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_shows_the_deadline_and_the_seconds_left_to_pay(client, order, settings):
    """The deadline is created_at + PAYMENTS_ORDER_TTL, written in UTC with its label (what a
    browser without JavaScript shows), and the seconds left to it for the countdown."""
    settings.PAYMENTS_ORDER_TTL = 600
    created = timezone.now().replace(microsecond=0) - timedelta(seconds=100)
    RechargeOrder.objects.filter(pk=order.pk).update(created_at=created)

    response = client.get(cashier_url(order))

    deadline = created + timedelta(seconds=600)
    assert f"{deadline:%Y-%m-%d %H:%M:%S} UTC</time>" in response.content.decode()
    assert 495 <= response.context["seconds_left"] <= 500


def test_an_order_past_its_time_to_live_has_no_time_left(client, order, settings):
    """Past the TTL (the expiry tick not yet run) the countdown starts at 0, never below."""
    RechargeOrder.objects.filter(pk=order.pk).update(
        created_at=order.created_at - timedelta(seconds=settings.PAYMENTS_ORDER_TTL + 60)
    )

    assert client.get(cashier_url(order)).context["seconds_left"] == 0


def test_shows_a_zero_decimal_currency_without_decimals(client, order_factory):
    """JPY has no minor unit: 1234 is shown as 1234 JPY."""
    order = order_factory(amount=1234, currency="JPY")

    assert "1234 JPY" in client.get(cashier_url(order)).content.decode()


def test_unknown_order_is_404(client, db):
    """A tx_no that does not exist is a 404."""
    assert client.get(reverse("payments:cashier", kwargs={"tx_no": "nope"})).status_code == 404


def test_pay_redirects_to_return_url_and_succeeds_the_order(client, order):
    """POST action=pay: the order is 100, one notification, the browser goes to return_url."""
    response = client.post(cashier_url(order), {"action": "pay"})

    assert response.status_code == 302
    assert response["Location"] == "https://merchant.example/return"
    assert status_of(order) == Status.SUCCEEDED
    assert list(Notification.objects.values_list("event_type", flat=True)) == ["recharge.succeeded"]


@pytest.mark.parametrize(("action", "reason"), [("decline", "declined"), ("cancel", "cancelled")])
def test_decline_or_cancel_redirects_and_fails_the_order(client, order, action, reason):
    """POST action=decline (the payment is refused) or action=cancel (the payer gives up):
    the order is 200 (failed, "declined" or "cancelled"), one failed notification, the
    browser goes to return_url."""
    response = client.post(cashier_url(order), {"action": action})

    assert response.status_code == 302
    assert response["Location"] == "https://merchant.example/return"
    order.refresh_from_db()
    assert (order.status, order.failure_reason) == (Status.FAILED, reason)
    assert list(Notification.objects.values_list("event_type", flat=True)) == ["recharge.failed"]


@pytest.mark.parametrize(("first", "second"), [("pay", "decline"), ("decline", "pay")])
def test_post_on_a_final_order_changes_nothing(client, order, first, second):
    """A second POST (back button, double click) leaves the status and sends nothing new."""
    client.post(cashier_url(order), {"action": first})
    final = status_of(order)

    response = client.post(cashier_url(order), {"action": second})

    assert response.status_code == 302
    assert status_of(order) == final
    assert Notification.objects.count() == 1


@pytest.mark.parametrize(
    ("action", "notice"),
    [
        ("pay", "This order has already been paid."),
        ("decline", "This order was declined; nothing was paid."),
        ("cancel", "This order was cancelled; nothing was paid."),
    ],
)
def test_final_order_page_has_no_buttons(client, order, action, notice):
    """Once final, the page says how it ended, in a sentence, and offers only the way back to
    the merchant."""
    client.post(cashier_url(order), {"action": action})

    html = client.get(cashier_url(order)).content.decode()

    assert notice in html
    assert 'value="pay"' not in html and 'value="cancel"' not in html
    assert "https://merchant.example/return" in html


def test_an_expired_order_says_it_expired_unpaid(client, order):
    """An order the expiry tick closed reads as expired, not as declined."""
    recharge_order_expire(tx_no=order.tx_no)

    html = client.get(cashier_url(order)).content.decode()

    assert "This order expired before it was paid." in html
    assert "declined" not in html


@pytest.mark.parametrize("data", [{"action": "refund"}, {"action": ""}, {}])
def test_bad_action_is_400_and_changes_nothing(client, order, data):
    """An unknown or missing action: 400 with the page and an error, the order still pending."""
    response = client.post(cashier_url(order), data)

    assert response.status_code == 400
    html = response.content.decode()
    assert "Choose Pay, Decline or Cancel payment." in html
    assert "12.34 CNY" in html  # the page shown again still says what is being paid
    assert status_of(order) == Status.PENDING
    assert not Notification.objects.exists()


def test_other_methods_are_405(client, order):
    """Only GET and POST."""
    assert client.put(cashier_url(order)).status_code == 405
    assert client.delete(cashier_url(order)).status_code == 405


def test_post_without_csrf_token_is_403(order):
    """A cross-site form cannot pay an order: the POST needs the page's CSRF token."""
    browser = Client(enforce_csrf_checks=True)

    response = browser.post(cashier_url(order), {"action": "pay"})

    assert response.status_code == 403
    assert status_of(order) == Status.PENDING
    assert not Notification.objects.exists()


def test_post_with_the_pages_csrf_token_pays(order):
    """The form the page renders carries a working token."""
    browser = Client(enforce_csrf_checks=True)
    token = browser.get(cashier_url(order)).context["csrf_token"]

    response = browser.post(cashier_url(order), {"action": "pay", "csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert status_of(order) == Status.SUCCEEDED


def test_pay_past_the_time_to_live_expires_the_order_instead(client, order, settings):
    """The expiry tick has not run yet, but the order is older than PAYMENTS_ORDER_TTL: the
    payer is told, the order is failed as "expired" (one recharge.failed), never succeeded."""
    RechargeOrder.objects.filter(pk=order.pk).update(
        created_at=order.created_at - timedelta(seconds=settings.PAYMENTS_ORDER_TTL + 1)
    )

    response = client.post(cashier_url(order), {"action": "pay"})

    assert response.status_code == 409
    assert "This order has expired; it was not paid." in response.content.decode()
    order.refresh_from_db()
    assert (order.status, order.failure_reason, order.paid_at) == (Status.FAILED, "expired", None)
    assert list(Notification.objects.values_list("event_type", flat=True)) == ["recharge.failed"]


def test_pay_just_inside_the_time_to_live_succeeds(client, order, settings):
    """The age check is not off by a tick: an order 2 s younger than its TTL is still paid."""
    RechargeOrder.objects.filter(pk=order.pk).update(
        created_at=order.created_at - timedelta(seconds=settings.PAYMENTS_ORDER_TTL - 2)
    )

    assert client.post(cashier_url(order), {"action": "pay"}).status_code == 302
    assert status_of(order) == Status.SUCCEEDED


def test_deactivated_merchants_order_cannot_be_paid(client, order):
    """A merchant deactivated after the order was created: 409 with the reason, the order
    still pending (it expires with its TTL), no notification written."""
    Merchant.objects.filter(pk=order.merchant_id).update(is_active=False)

    response = client.post(cashier_url(order), {"action": "pay"})

    assert response.status_code == 409
    assert "This merchant no longer accepts payments" in response.content.decode()
    assert status_of(order) == Status.PENDING
    assert not Notification.objects.exists()


def test_deactivated_merchants_order_can_still_be_declined(client, order):
    """Declining pays nothing: the payer can still close the order."""
    Merchant.objects.filter(pk=order.merchant_id).update(is_active=False)

    assert client.post(cashier_url(order), {"action": "decline"}).status_code == 302
    assert status_of(order) == Status.FAILED
