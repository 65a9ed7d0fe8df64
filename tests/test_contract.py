"""The recharge notification contract (payments/contract.py, docs/notifications.md): what
payments emits is what accounts accepts, and the schema publishes that one definition."""

import json

import pytest
from rest_framework.test import APIClient

from accounts.models import Recharge
from notifications.models import Notification
from payments.contract import EVENT_TYPES, RechargeNotificationSerializer, RechargeStatus
from payments.services import recharge_order_cancel, recharge_order_decline, recharge_order_pay
from tests.conftest import sign
from tests.helpers import WEBHOOK_ID, notification_payload, recharge_fields

pytestmark = pytest.mark.django_db


def notify(body: str, *, webhook_id: str):
    """POST ``body`` to accounts' notify endpoint, signed as payments' worker signs it."""
    return APIClient().post(
        "/api/accounts/notify/",
        data=body,
        content_type="application/json",
        headers=sign(body, webhook_id=webhook_id),
    )


@pytest.mark.parametrize("finish", [recharge_order_pay, recharge_order_decline])
def test_what_payments_emits_is_what_the_contract_accepts(order_factory, finish):
    """The body payments freezes for an order validates against the contract's serializer,
    field for field (amount an int of minor units, the status final, the id the webhook-id)."""
    order = finish(tx_no=order_factory().tx_no)
    notification = Notification.objects.get(subject=order.tx_no)
    payload = json.loads(notification.body)

    serializer = RechargeNotificationSerializer(data=payload)

    assert serializer.is_valid(), serializer.errors
    valid = serializer.validated_data
    assert valid["id"] == notification.webhook_id
    assert valid["type"] == EVENT_TYPES[order.status]
    assert valid["data"]["amount"] == order.amount and type(payload["data"]["amount"]) is int
    assert (valid["data"]["tx_no"], valid["data"]["status"]) == (order.tx_no, order.status)


def test_accounts_applies_what_payments_emits(order_factory, account, recharge_factory):
    """End to end in-process: payments' own body for a paid order, signed as the worker signs
    it, POSTed to accounts' notify endpoint, is applied: the recharge succeeds."""
    recharge = recharge_factory(tx_no=None)
    order = order_factory(**{k: v for k, v in recharge_fields(recharge).items() if k != "tx_no"})
    order = recharge_order_pay(tx_no=order.tx_no)
    notification = Notification.objects.get(subject=order.tx_no)

    response = notify(notification.body, webhook_id=notification.webhook_id)

    assert (response.status_code, response.json()["outcome"]) == (200, "applied")
    recharge.refresh_from_db()
    assert (recharge.status, recharge.tx_no) == (RechargeStatus.SUCCEEDED, order.tx_no)
    assert Recharge.Status is RechargeStatus


def test_accounts_keeps_the_failure_reason_payments_emits(order_factory, recharge_factory):
    """payments' own body for an order the payer cancelled, POSTed to accounts' notify
    endpoint, fails the recharge and records why: "cancelled"."""
    recharge = recharge_factory(tx_no=None)
    order = order_factory(**{k: v for k, v in recharge_fields(recharge).items() if k != "tx_no"})
    recharge_order_cancel(tx_no=order.tx_no)
    notification = Notification.objects.get(subject=order.tx_no)

    response = notify(notification.body, webhook_id=notification.webhook_id)

    assert (response.status_code, response.json()["outcome"]) == (200, "applied")
    recharge.refresh_from_db()
    assert (recharge.status, recharge.failure_reason) == (RechargeStatus.FAILED, "cancelled")


def test_accounts_applies_a_failure_reason_it_does_not_know_however_long(recharge_factory):
    """The contract says more failure reasons may be added: a receiver refusing one would
    have it retried for a day and never applied. A reason longer than any today's (payments
    stores 32 characters) fails the recharge all the same, kept bounded."""
    recharge = recharge_factory()
    reason = "declined_by_the_issuing_bank_risk_control"
    body = json.dumps(notification_payload(recharge, status=200, failure_reason=reason))

    response = notify(body, webhook_id=WEBHOOK_ID)

    assert (response.status_code, response.json()["outcome"]) == (200, "applied")
    recharge.refresh_from_db()
    assert (recharge.status, recharge.failure_reason) == (RechargeStatus.FAILED, reason[:32])


def test_the_schema_publishes_the_contract_as_one_component(client):
    """The notify endpoint's request body in /api/schema/ is the contract's component, with
    the contract's event types and statuses."""
    schema = client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    body = schema["paths"]["/api/accounts/notify/"]["post"]["requestBody"]
    reference = body["content"]["application/json"]["schema"]["$ref"]

    assert reference == "#/components/schemas/RechargeNotificationRequest"
    assert components["TypeEnum"]["enum"] == sorted(EVENT_TYPES.values())
    assert set(components["StatusEnum"]["enum"]) == set(RechargeStatus.values)
