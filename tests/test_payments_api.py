"""The merchant API (payments/apis.py): create and query orders, with Bearer API keys."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from payments import services
from payments.models import RechargeOrder
from tests.helpers import order_request

CREATE_URL = reverse("payments:recharge-create")
BODY = order_request()  # the valid create request every case starts from


def detail_url(tx_no):
    return reverse("payments:recharge-detail", kwargs={"tx_no": tx_no})


def post_order(client, body=None, **overrides):
    return client.post(CREATE_URL, {**(body or BODY), **overrides}, format="json")


# --- create -------------------------------------------------------------------------------


def test_create_returns_201_with_the_order_and_cashier_url(merchant_api, merchant, settings):
    """A new order: 201, status 0, an opaque tx_no and the cashier URL to send the payer to."""
    settings.PAYMENTS_PUBLIC_URL = "https://pay.example/"

    response = post_order(merchant_api)

    assert response.status_code == 201
    data = response.json()
    order = RechargeOrder.objects.get()
    assert order.merchant == merchant
    assert data["tx_no"] == order.tx_no
    assert data["status"] == 0
    assert data["amount"] == 1234
    assert data["cashier_url"] == f"https://pay.example/pay/{order.tx_no}/"
    assert {k: data[k] for k in BODY} == BODY
    assert data["paid_at"] is None


def test_repeated_create_returns_200_with_the_same_order(merchant_api):
    """The same out_trade_no and parameters again: 200 and the same tx_no, no second order."""
    first = post_order(merchant_api)

    again = post_order(merchant_api)

    assert again.status_code == 200
    assert again.json()["tx_no"] == first.json()["tx_no"]
    assert RechargeOrder.objects.count() == 1


def test_reused_out_trade_no_with_other_parameters_is_409(merchant_api):
    """The same out_trade_no for a different amount: 409 Conflict, the order unchanged."""
    post_order(merchant_api)

    response = post_order(merchant_api, amount=9999)

    assert response.status_code == 409
    assert "SHOP-0001" in response.json()["detail"]
    assert list(RechargeOrder.objects.values_list("amount", flat=True)) == [1234]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 100.5),
        ("amount", 100.0),
        ("amount", "100"),
        ("amount", True),
        ("amount", None),
        ("amount", 0),
        ("amount", -1),
        ("amount", 100_000_001),
        ("amount", 10**30),
        ("currency", "XYZ"),
        ("currency", "cny"),
        ("out_trade_no", "has space"),
        ("out_trade_no", "semi;colon"),
        ("out_trade_no", "订单1"),
        ("out_trade_no", ""),
        ("out_trade_no", "x" * 65),
        ("account_no", "AC/../1"),
        ("notify_url", "ftp://merchant.example/notify"),
        ("notify_url", "javascript:alert(1)"),
        ("notify_url", "not a url"),
        ("return_url", "ftp://merchant.example/return"),
        ("return_url", "javascript:alert(1)"),
    ],
)
def test_invalid_field_is_400_naming_it_and_creates_nothing(merchant_api, field, value):
    """Each refusal names the offending field; no order is created."""
    response = post_order(merchant_api, **{field: value})

    assert response.status_code == 400
    assert field in response.json()
    assert not RechargeOrder.objects.exists()


def test_amount_limits_are_settings(merchant_api, settings):
    """PAYMENTS_MAX_AMOUNT bounds the amount: the maximum is accepted, one more refused."""
    settings.PAYMENTS_MAX_AMOUNT = 5000

    assert post_order(merchant_api, amount=5000).status_code == 201
    refused = post_order(merchant_api, out_trade_no="SHOP-0002", amount=5001)

    assert refused.status_code == 400
    assert "5000" in refused.json()["amount"][0]


@pytest.mark.parametrize("field", list(BODY))
def test_missing_field_is_400_naming_it(merchant_api, field):
    """Every field is required."""
    body = {k: v for k, v in BODY.items() if k != field}

    response = merchant_api.post(CREATE_URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not RechargeOrder.objects.exists()


@pytest.mark.parametrize("raw", ["not json", '{"amount": 12', "[1, 2]", "null", ""])
def test_malformed_json_body_is_400(merchant_api, raw):
    """A body that is not a JSON object is refused with 400."""
    response = merchant_api.post(CREATE_URL, raw, content_type="application/json")

    assert response.status_code == 400
    assert not RechargeOrder.objects.exists()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_non_json_content_type_is_415(merchant_api, content_type):
    """Only JSON is accepted: another content type is 415 Unsupported Media Type."""
    response = merchant_api.post(
        CREATE_URL, "out_trade_no=SHOP-0001&amount=1234", content_type=content_type
    )

    assert response.status_code == 415
    assert not RechargeOrder.objects.exists()


# --- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer sk_not_a_real_key_at_all",
        "Bearer ",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Token sk_whatever",
        "Bearer " + "x" * 200,
    ],
)
def test_missing_or_invalid_authorization_is_401(merchant, authorization):
    """No key, an unknown key or another scheme: 401 with a Bearer challenge; no order."""
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)

    create = post_order(client)
    query = client.get(detail_url("anything"))

    for response in (create, query):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"
    assert not RechargeOrder.objects.exists()


def test_key_of_another_scheme_prefix_is_401(merchant_credentials):
    """The real key under another scheme name is still refused."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {merchant_credentials.api_key}")

    assert post_order(client).status_code == 401


def test_deactivated_merchant_is_401(merchant_api, merchant):
    """A merchant switched off by staff can no longer call the API."""
    merchant.is_active = False
    merchant.save(update_fields=["is_active"])

    assert post_order(merchant_api).status_code == 401


# --- query --------------------------------------------------------------------------------


def test_detail_returns_own_order_as_it_stands(merchant_api):
    """GET by tx_no: 200 with the current status, here after payment."""
    tx_no = post_order(merchant_api).json()["tx_no"]
    services.recharge_order_pay(tx_no=tx_no)

    response = merchant_api.get(detail_url(tx_no))

    assert response.status_code == 200
    data = response.json()
    assert (data["tx_no"], data["status"], data["amount"]) == (tx_no, 100, 1234)
    assert data["paid_at"] is not None


def test_detail_of_another_merchants_order_is_404(merchant_api, order_factory, other_merchant):
    """A merchant cannot see another merchant's order: 404, the same as an unknown tx_no."""
    theirs = order_factory(merchant=other_merchant)

    response = merchant_api.get(detail_url(theirs.tx_no))

    assert response.status_code == 404
    assert "tx_no" not in response.json()


def test_detail_of_unknown_tx_no_is_404(merchant_api):
    """An unknown tx_no is 404."""
    assert merchant_api.get(detail_url("20250101deadbeefdeadbeefdead")).status_code == 404


def test_collection_with_put_or_delete_is_405(merchant_api):
    """The collection takes POST (create) and GET (lookup by out_trade_no), nothing else."""
    assert merchant_api.put(CREATE_URL, BODY, format="json").status_code == 405
    assert merchant_api.delete(CREATE_URL).status_code == 405
