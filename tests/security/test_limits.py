"""Request limits on every endpoint: body size (413 before anything is read), and length
limits on the strings forms accept."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.security.conftest import db_state

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

API_LIMIT, FORM_LIMIT = 16 * 1024, 256 * 1024


def endpoints(tx_no: str) -> dict:
    """Every URL that takes a request, with the limit that applies to it."""
    return {
        "merchant API: create": ("post", reverse("payments:recharge-create"), API_LIMIT),
        "merchant API: query": (
            "get",
            reverse("payments:recharge-detail", kwargs={"tx_no": tx_no}),
            API_LIMIT,
        ),
        "notify": ("post", reverse("accounts:notify"), API_LIMIT),
        "OpenAPI schema": ("get", "/api/schema/", API_LIMIT),
        "login": ("post", reverse("login"), FORM_LIMIT),
        "logout": ("post", reverse("logout"), FORM_LIMIT),
        "home": ("get", reverse("accounts:home"), FORM_LIMIT),
        "recharge form": ("post", reverse("accounts:recharge-create"), FORM_LIMIT),
        "cashier": ("post", reverse("payments:cashier", kwargs={"tx_no": tx_no}), FORM_LIMIT),
        "admin login": ("post", reverse("admin:login"), FORM_LIMIT),
        "admin action": ("post", reverse("admin:payments_rechargeorder_changelist"), FORM_LIMIT),
    }


ENDPOINT_NAMES = list(endpoints("x"))


@pytest.mark.parametrize("name", ENDPOINT_NAMES)
def test_every_endpoint_refuses_a_body_over_its_limit(
    admin_client, merchant_credentials, order_factory, name
):
    """One byte over the limit (API_MAX_BODY_BYTES under /api/, REQUEST_MAX_BODY_BYTES
    elsewhere) is 413 naming the limit, whoever sends it, and nothing changes."""
    order = order_factory()
    method, url, limit = endpoints(order.tx_no)[name]
    before = db_state()

    response = admin_client.generic(
        method.upper(),
        url,
        b"a" * (limit + 1),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {merchant_credentials.api_key}",
    )

    assert response.status_code == 413
    assert f"Request body too large (limit {limit} bytes)." in response.content.decode()
    assert db_state() == before


@pytest.mark.parametrize("name", ENDPOINT_NAMES)
def test_every_endpoint_checks_the_declared_length_first(client, order_factory, name):
    """A Content-Length of a gigabyte is refused from the header alone (nothing read)."""
    order = order_factory()
    method, url, _ = endpoints(order.tx_no)[name]

    response = client.generic(method.upper(), url, b"{}", CONTENT_LENGTH=str(10**9))

    assert response.status_code == 413


def test_limits_are_settings(client, settings, merchant_credentials):
    """API_MAX_BODY_BYTES can be lowered: a body the default would take is then refused."""
    settings.API_MAX_BODY_BYTES = 64

    response = client.post(
        reverse("payments:recharge-create"),
        {"out_trade_no": "x" * 100},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {merchant_credentials.api_key}",
    )

    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large (limit 64 bytes)."}


def test_recharge_form_amount_is_length_limited(client, user, account):
    """The amount field takes at most 20 characters: longer is a 400 form error, nothing
    started."""
    client.force_login(user)
    before = db_state()

    response = client.post(reverse("accounts:recharge-create"), {"amount": "1" * 21})

    assert response.status_code == 400
    assert "Ensure this value has at most 20 characters" in response.content.decode()
    assert db_state() == before


def test_overlong_login_is_an_ordinary_failed_login(db):
    """A 10,000-character username (the form says maxlength 150) is a plain failed login:
    the same message as a wrong password, no session, no error."""
    browser = Client()

    response = browser.post(reverse("login"), {"username": "u" * 10_000, "password": "x"})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'maxlength="150"' in page
    assert "Please enter a correct username and password" in page
    assert "_auth_user_id" not in browser.session


def test_cashier_action_is_a_closed_choice(client, order_factory):
    """Anything but pay/decline/cancel (here 5,000 characters) is a 400 and the order is
    untouched."""
    order = order_factory()
    before = db_state()

    response = client.post(
        reverse("payments:cashier", kwargs={"tx_no": order.tx_no}), {"action": "p" * 5000}
    )

    assert response.status_code == 400
    assert "Choose Pay, Decline or Cancel payment." in response.content.decode()
    assert db_state() == before
