"""The README's merchant walk-through ("Using it as a merchant"), in-process: onboard with
``create_merchant --allowed-host``, create an order, query it by tx_no and by out_trade_no,
pay at the cashier and land on return_url as given."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from notifications import netguard

pytestmark = pytest.mark.django_db
ORDER = {
    "out_trade_no": "R1001",
    "account_no": "AC000000000001",
    "amount": 1234,
    "currency": "CNY",
    "notify_url": "https://shop.example/notify",
    "return_url": "https://shop.example/done",
}
COLLECTION = "/api/payments/recharges/"


@pytest.fixture(autouse=True)
def shop_example_is_public(monkeypatch):
    """shop.example resolves to a public address, as a merchant's real host would (no DNS)."""
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["93.184.215.14"])


def onboard(*args: str) -> APIClient:
    """``create_merchant "My shop" *args``; an API client with the key it printed."""
    out = StringIO()
    call_command("create_merchant", "My shop", *args, stdout=out)
    printed = dict(line.split(":", 1) for line in out.getvalue().splitlines() if ": " in line)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {printed['api_key'].strip()}")
    return client


def test_without_allowed_host_the_readme_order_is_refused_naming_the_host():
    """Onboarded without ``--allowed-host``: the order's shop.example URLs are refused with
    400 saying why (what the README's example hit before it named the flag)."""
    response = onboard().post(COLLECTION, ORDER, format="json")

    assert response.status_code == 400
    reason = "Host 'shop.example' is not among this merchant's allowed hosts."
    assert response.json() == {"notify_url": [reason], "return_url": [reason]}


def test_the_readme_walk_through_from_onboarding_to_return_url():
    """With ``--allowed-host shop.example``: 201 then 200 for the same order, the query by
    tx_no and by out_trade_no answer the same order, and paying at the cashier sends the
    browser to return_url exactly as given (no query string: the merchant asks for the
    result), the order then succeeded."""
    api = onboard("--allowed-host", "shop.example")

    created = api.post(COLLECTION, ORDER, format="json")
    again = api.post(COLLECTION, ORDER, format="json")
    tx_no = created.json()["tx_no"]
    by_tx_no = api.get(f"{COLLECTION}{tx_no}/")
    by_out_trade_no = api.get(COLLECTION, {"out_trade_no": "R1001"})
    paid = Client().post(f"/pay/{tx_no}/", {"action": "pay"})

    assert (created.status_code, again.status_code, again.json()["tx_no"]) == (201, 200, tx_no)
    assert by_tx_no.json() == by_out_trade_no.json() == created.json()
    assert (paid.status_code, paid["Location"]) == (302, "https://shop.example/done")
    after = api.get(COLLECTION, {"out_trade_no": "R1001"}).json()
    assert (after["status"], after["paid_at"] is not None) == (100, True)
