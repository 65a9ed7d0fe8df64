"""The published schema's examples (/api/schema/, shown by /api/docs/) are real: the values a
merchant would send and get, each accepted by the serializer it illustrates and, for the
refusals, the very bodies the API answers (payments/contract.py, serializers.py, apis.py)."""

import pytest
from rest_framework.test import APIClient

from notifications import netguard
from payments.contract import RechargeNotificationSerializer
from payments.serializers import RechargeCreateInputSerializer, RechargeOrderOutputSerializer
from payments.services import merchant_create

pytestmark = pytest.mark.django_db
COLLECTION = "/api/payments/recharges/"


@pytest.fixture
def schema(client):
    return client.get("/api/schema/?format=json").json()


def examples(content: dict) -> dict:
    """``{name: value}`` of a request body's or response's ``application/json`` examples."""
    found = content["content"]["application/json"].get("examples", {})
    return {name: example["value"] for name, example in found.items()}


def walk(value):
    """Every value nested in ``value``, itself included."""
    yield value
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list):
        for child in children:
            yield from walk(child)


def test_no_example_is_made_up_from_a_type(schema):
    """Every JSON example in the schema: no placeholder "string", no amount beyond the
    order limit (the generated 9223372036854776000), every URL https."""
    values = [
        example["value"]
        for node in walk(schema)
        if isinstance(node, dict) and "examples" in node and isinstance(node["examples"], dict)
        for example in node["examples"].values()
    ]
    assert len(values) >= 10
    for value in values:
        for leaf in walk(value):
            assert leaf != "string"
            if isinstance(leaf, dict) and "currency" in leaf:  # an order or a result
                assert type(leaf["amount"]) is int and 1 <= leaf["amount"] <= 100_000_000
                for key in ("notify_url", "return_url", "cashier_url"):
                    assert leaf.get(key, "https://").startswith("https://"), leaf


def test_the_create_example_is_a_valid_order_and_its_answer_is_an_order(
    schema, settings, monkeypatch
):
    """The create request example passes the create serializer for a merchant allowed on
    shop.example; the 201 example has exactly the order's fields, status 0 and 500 fen."""
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["93.184.215.14"])
    merchant = merchant_create(name="Shop", allowed_hosts=["shop.example"]).merchant
    operation = schema["paths"][COLLECTION]["post"]
    (request,) = examples(operation["requestBody"]).values()

    serializer = RechargeCreateInputSerializer(data=request, context={"merchant": merchant})

    assert serializer.is_valid(), serializer.errors
    (created,) = examples(operation["responses"]["201"]).values()
    assert set(created) == set(RechargeOrderOutputSerializer().fields)
    assert (created["amount"], created["currency"], created["status"]) == (500, "CNY", 0)
    assert created["cashier_url"].endswith(f"/pay/{created['tx_no']}/")


def test_the_notification_example_is_what_the_receiver_accepts(schema):
    """The notify endpoint's request example validates against the contract's serializer,
    its id in the webhook-id shape and its amount in minor units."""
    operation = schema["paths"]["/api/accounts/notify/"]["post"]
    (notification,) = examples(operation["requestBody"]).values()

    serializer = RechargeNotificationSerializer(data=notification)

    assert serializer.is_valid(), serializer.errors
    assert notification["id"].startswith("msg_") and notification["data"]["amount"] == 500


def test_refusal_examples_are_the_bodies_the_api_sends(schema, merchant_api):
    """The lookup's 400 and 404 examples and the API's 401 example are, word for word, what
    the API answers in those cases."""
    lookup = schema["paths"][COLLECTION]["get"]["responses"]
    (missing,) = examples(lookup["400"]).values()
    (not_found,) = examples(lookup["404"]).values()
    (unknown_key,) = examples(lookup["401"]).values()
    anonymous = APIClient()
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer sk_not_a_key")

    assert merchant_api.get(COLLECTION).json() == missing
    number = not_found["detail"].split("'")[1]
    assert merchant_api.get(COLLECTION, {"out_trade_no": number}).json() == not_found
    assert anonymous.get(COLLECTION, {"out_trade_no": number}).json() == unknown_key
