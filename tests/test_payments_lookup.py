"""``GET /api/payments/recharges/?out_trade_no=<x>``: a merchant finds its order by its own
order number (payments/apis.py ``RechargeCreateApi.get``)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from payments.serializers import RechargeOrderOutputSerializer

COLLECTION_URL = reverse("payments:recharge-create")


def lookup(client, **params):
    return client.get(COLLECTION_URL, params)


def test_lookup_by_out_trade_no_returns_the_order_as_by_tx_no(merchant_api, order_factory):
    """200 and the same body as ``GET /api/payments/recharges/{tx_no}/``."""
    order = order_factory(out_trade_no="SHOP-42")
    by_tx_no = merchant_api.get(reverse("payments:recharge-detail", args=[order.tx_no]))

    response = lookup(merchant_api, out_trade_no="SHOP-42")

    assert response.status_code == 200
    assert response.json() == by_tx_no.json() == RechargeOrderOutputSerializer(order).data


def test_lookup_of_another_merchants_number_is_404_with_a_reason(
    merchant_api, order_factory, other_merchant
):
    """Another merchant's order of that very number stays invisible: 404 naming the number,
    like an unknown one, and nothing of the order in the body."""
    theirs = order_factory(merchant=other_merchant, out_trade_no="SHARED-1")

    response = lookup(merchant_api, out_trade_no="SHARED-1")

    assert response.status_code == 404
    assert response.json() == {"detail": "You have no order with out_trade_no 'SHARED-1'."}
    assert theirs.tx_no not in response.content.decode()


def test_each_merchant_finds_its_own_order_of_a_shared_number(
    merchant_api, order_factory, other_merchant
):
    """Two merchants with the same out_trade_no each get their own order."""
    mine = order_factory(out_trade_no="SAME-1")
    order_factory(merchant=other_merchant, out_trade_no="SAME-1")

    assert lookup(merchant_api, out_trade_no="SAME-1").json()["tx_no"] == mine.tx_no


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, "This field is required."),
        ({"out_trade_no": ""}, "This field may not be blank."),
        ({"out_trade_no": "no spaces"}, "Use 1-64 letters, digits, '_' or '-'."),
        ({"out_trade_no": "x" * 65}, "Use 1-64 letters, digits, '_' or '-'."),
    ],
)
def test_lookup_without_a_valid_out_trade_no_is_400_naming_it(merchant_api, params, reason):
    """A missing or malformed parameter: 400 naming ``out_trade_no`` and why."""
    response = lookup(merchant_api, **params)

    assert response.status_code == 400
    assert response.json() == {"out_trade_no": [reason]}


def test_lookup_needs_an_api_key(db):
    """No Bearer key: 401, nothing looked up."""
    assert lookup(APIClient(), out_trade_no="SHOP-1").status_code == 401


def test_lookup_is_not_spent_from_the_create_budget(merchant_api, order_factory, settings):
    """Queries are not throttled by PAYMENTS_CREATE_THROTTLE_RATE: with one create a minute
    allowed, a merchant still looks orders up as often as it needs."""
    order_factory(out_trade_no="SHOP-7")
    settings.PAYMENTS_CREATE_THROTTLE_RATE = "1/min"

    codes = {lookup(merchant_api, out_trade_no="SHOP-7").status_code for _ in range(3)}

    assert codes == {200}
