"""The wallet pages (accounts/views.py): login, balance, recharge form, return page."""

import json
from datetime import UTC, datetime, timedelta

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
    ("status", "reason", "refreshes", "label"),
    [
        (Status.PENDING, "", True, "Pending"),
        (Status.SUCCEEDED, "", False, "Succeeded"),
        (Status.FAILED, "expired", False, "Expired — not paid"),
        (Status.FAILED, "declined", False, "Declined"),
        (Status.FAILED, "cancelled", False, "Cancelled"),
        (Status.FAILED, "", False, "Failed"),  # payments did not say why
    ],
)
def test_status_page_says_how_it_ended_and_refreshes_only_while_pending(
    browser, recharge_factory, status, reason, refreshes, label
):
    """The return page reloads itself every 2 s while pending and stops once final; it
    names the outcome, an expired order distinct from a declined or cancelled one."""
    recharge = recharge_factory(amount=1234, status=status, failure_reason=reason)

    response = browser.get(status_url(recharge))

    html = response.content.decode()
    assert response.status_code == 200
    assert ('<meta http-equiv="refresh"' in html) is refreshes
    assert f'<p class="s{status}" id="status">{label}</p>' in html
    assert "12.34 CNY" in html


def test_a_pending_recharge_offers_to_continue_paying(browser, recharge_factory):
    """Pending with a cashier: a "Continue to pay" link to that cashier, and the page says
    it updates itself."""
    recharge = recharge_factory(cashier_url="https://pay.example/pay/TX-1/")

    html = browser.get(status_url(recharge)).content.decode()

    assert (
        '<a class="button primary" href="https://pay.example/pay/TX-1/">Continue to pay</a>' in html
    )
    assert "this page updates itself" in html


def test_a_recharge_payments_never_answered_has_no_cashier_link(browser, recharge_factory):
    """Pending without a cashier_url (the create call failed): no dead "Continue to pay"."""
    recharge = recharge_factory(tx_no=None, cashier_url="")

    html = browser.get(status_url(recharge)).content.decode()

    assert "Continue to pay" not in html
    assert "this page updates itself" in html


def test_a_final_recharge_offers_no_payment(browser, recharge_factory):
    """Once final there is nothing left to pay: no "Continue to pay"."""
    recharge = recharge_factory(
        status=Status.FAILED, failure_reason="cancelled", cashier_url="https://pay.example/p/"
    )

    assert "Continue to pay" not in browser.get(status_url(recharge)).content.decode()


def test_times_are_shown_with_their_zone(browser, recharge_factory):
    """History and status page write times one way, to the second, labelled UTC."""
    recharge = recharge_factory()
    when = datetime(2026, 11, 27, 14, 3, 22, tzinfo=UTC)
    Recharge.objects.filter(pk=recharge.pk).update(created_at=when)

    assert "2026-11-27 14:03:22 UTC" in browser.get(HOME).content.decode()
    assert "2026-11-27 14:03:22 UTC" in browser.get(status_url(recharge)).content.decode()


def test_history_is_paginated_newest_first(browser, recharge_factory):
    """45 recharges: 20 a page, newest first, none lost or repeated; "Older" leads on,
    "Newer" back, and only where there is such a page."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(45):
        recharge = recharge_factory(out_trade_no=f"R-{number:03d}")
        Recharge.objects.filter(pk=recharge.pk).update(created_at=start + timedelta(minutes=number))

    pages = [browser.get(HOME, {"page": page}) for page in (1, 2, 3)]

    shown = [[r.out_trade_no for r, _ in page.context["recharges"]] for page in pages]
    assert [len(numbers) for numbers in shown] == [20, 20, 5]
    assert sum(shown, []) == [f"R-{number:03d}" for number in reversed(range(45))]
    first, middle, last = (page.content.decode() for page in pages)
    assert 'href="?page=2">Older</a>' in first and ">Newer</a>" not in first
    assert 'href="?page=1">Newer</a>' in middle and 'href="?page=3">Older</a>' in middle
    assert 'href="?page=2">Newer</a>' in last and ">Older</a>" not in last


def test_a_short_history_has_no_page_links(browser, recharge_factory):
    """Up to 20 recharges: one page, no Older/Newer."""
    recharge_factory()

    html = browser.get(HOME).content.decode()

    assert ">Older</a>" not in html and ">Newer</a>" not in html


@pytest.mark.parametrize("page", ["2", "0", "abc", "-1"])
def test_a_page_that_does_not_exist_is_404(browser, recharge_factory, page):
    """A page number past the end, or not a number, is a 404, not another page."""
    recharge_factory()

    assert browser.get(HOME, {"page": page}).status_code == 404


@pytest.mark.parametrize("path", [HOME, reverse("login"), reverse("logout")])
def test_pages_are_laid_out_for_the_phones_width(client, user, account, path):
    """Every wallet page declares the device's width as its layout width (without it a
    phone lays the page out 980 px wide and shrinks it)."""
    client.force_login(user)

    html = client.get(path).content.decode()

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_the_not_found_page_is_laid_out_for_phones_too(client, settings, db):
    """Without DEBUG, a missing page is the project's 404 page, with the viewport meta."""
    settings.DEBUG = False

    response = client.get("/no/such/page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "There is nothing at /no/such/page/." in html


def test_logout_by_get_asks_for_the_button_and_keeps_the_session(browser):
    """GET /logout/ (typed, bookmarked): a page whose Log out button POSTs with a CSRF
    token; the user is still logged in until it is pressed."""
    response = browser.get(reverse("logout"))

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<form method="post" action="{reverse("logout")}">' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert browser.get(HOME).status_code == 200


def test_logout_by_post_logs_out(browser):
    """POST /logout/ (the button): logged out, sent to the log-in page."""
    response = browser.post(reverse("logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert browser.get(HOME).status_code == 302


def test_logout_by_get_when_logged_out_offers_to_log_in(client, db):
    """Already logged out: the page says so and links to the log-in page, no button."""
    html = client.get(reverse("logout")).content.decode()

    assert "You are logged out" in html
    assert "<button" not in html


@pytest.mark.parametrize("staff", [False, True])
def test_a_login_without_a_wallet_is_told_where_it_belongs(client, db, staff):
    """A portal user or staff member at the wallet gets 403 and a page pointing to the
    merchant portal (and, for staff, the admin), not a bare 404; a POST starts nothing."""
    user = get_user_model().objects.create_user("portal-only", password="x", is_staff=staff)
    client.force_login(user)

    page = client.get(HOME)
    posted = client.post(reverse("accounts:recharge-create"), {"amount": "5.00"})

    assert page.status_code == 403 and posted.status_code == 403
    text = page.content.decode()
    assert "This login has no wallet" in text and 'href="/portal/login/"' in text
    assert ('href="/admin/"' in text) is staff
    assert 'name="viewport"' in text
