"""The wallet pages (accounts/views.py): login, balance, recharge form, return page."""

import json

import pytest
import requests
import responses
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.models import Recharge
from accounts.services import account_create

HOME = reverse("accounts:home")
RECHARGE = reverse("accounts:recharge-create")
API = "https://payments.example"
Status = Recharge.Status

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def status_url(recharge):
    return reverse("accounts:recharge-status", kwargs={"out_trade_no": recharge.out_trade_no})


@pytest.fixture
def browser(client, user, account):
    """A logged-in user with an account."""
    client.force_login(user)
    return client


@pytest.fixture
def payments_api(settings):
    """The payments API at ACCOUNTS_PAYMENTS_API_URL, mocked."""
    settings.ACCOUNTS_PAYMENTS_API_URL = API
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def test_login_is_required_for_every_page(client, recharge_factory):
    """Anonymous visitors are sent to the login page, and nothing is started."""
    recharge = recharge_factory()
    login = reverse("login")

    for response, path in (
        (client.get(HOME), HOME),
        (client.post(RECHARGE, {"amount": "10"}), RECHARGE),
        (client.get(status_url(recharge)), status_url(recharge)),
    ):
        assert response.status_code == 302
        assert response["Location"] == f"{login}?next={path}"
    assert Recharge.objects.count() == 1


def test_home_shows_balance_and_own_recharges(browser, recharge_factory, account):
    """The home page shows the formatted balance and the user's recharges."""
    account.balance = 123456
    account.save(update_fields=["balance"])
    recharge = recharge_factory(amount=2500)

    response = browser.get(HOME)

    html = response.content.decode()
    assert response.status_code == 200
    assert "1234.56 CNY" in html
    assert account.account_no in html
    assert recharge.out_trade_no in html and "25.00 CNY" in html


def test_another_users_recharge_is_404(client, recharge_factory):
    """A user cannot open someone else's recharge status page, even knowing its number."""
    theirs = recharge_factory()
    mallory = get_user_model().objects.create_user("mallory", password="pw")
    account_create(user=mallory, currency="CNY")
    client.force_login(mallory)

    assert client.get(status_url(theirs)).status_code == 404
    assert theirs.out_trade_no not in client.get(HOME).content.decode()


@pytest.mark.parametrize("amount", ["abc", "1.234", "0", "0.00", "-1", "", "1e3", "1000000.01"])
def test_recharge_form_refuses_bad_amounts(browser, payments_api, amount):
    """Not a plain amount with at most 2 decimals inside the limits: 400 with the form and
    its error, no recharge recorded and payments never called."""
    response = browser.post(RECHARGE, {"amount": amount})

    assert response.status_code == 400
    assert response.context["form"].errors["amount"]
    assert not Recharge.objects.exists()
    assert len(payments_api.calls) == 0


def test_valid_recharge_redirects_to_the_cashier(browser, payments_api, account):
    """12.34 is sent to payments as 1234 minor units; the browser goes to the cashier_url."""
    cashier = "https://pay.example/pay/TX-NEW/"
    payments_api.add(
        responses.POST,
        f"{API}/api/payments/recharges/",
        status=201,
        json={"tx_no": "TX-NEW", "cashier_url": cashier, "status": 0},
    )

    response = browser.post(RECHARGE, {"amount": "12.34"})

    assert response.status_code == 302
    assert response["Location"] == cashier
    recharge = Recharge.objects.get()
    assert (recharge.account, recharge.amount, recharge.tx_no) == (account, 1234, "TX-NEW")
    assert json.loads(payments_api.calls[0].request.body)["amount"] == 1234


def test_payments_down_returns_home_with_a_message(browser, payments_api):
    """Payments unreachable: back to the home page with a message; the recharge is kept
    (pending, no tx_no) for reconciliation."""
    payments_api.add(
        responses.POST, f"{API}/api/payments/recharges/", body=requests.ConnectionError("down")
    )

    response = browser.post(RECHARGE, {"amount": "5"}, follow=True)

    assert response.redirect_chain == [(HOME, 302)]
    assert "Payments is unavailable" in response.content.decode()
    recharge = Recharge.objects.get()
    assert (recharge.status, recharge.tx_no, recharge.amount) == (Status.PENDING, None, 500)


def test_recharge_form_is_post_only(browser):
    """GET on the form's action is not allowed."""
    assert browser.get(RECHARGE).status_code == 405


@pytest.mark.parametrize(
    ("status", "refreshes", "text"),
    [
        (Status.PENDING, True, "Processing"),
        (Status.SUCCEEDED, False, "Succeeded"),
        (Status.FAILED, False, "Failed"),
    ],
)
def test_status_page_refreshes_only_while_pending(
    browser, recharge_factory, status, refreshes, text
):
    """The return page reloads itself every 2 s while pending and stops once final."""
    recharge = recharge_factory(amount=1234, status=status)

    response = browser.get(status_url(recharge))

    html = response.content.decode()
    assert response.status_code == 200
    assert ('<meta http-equiv="refresh"' in html) is refreshes
    assert text in html
    assert "12.34 CNY" in html
