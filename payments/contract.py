"""The recharge notification, defined once: what payments POSTs to a merchant's notify_url and
what a receiver accepts. docs/notifications.md documents it; the OpenAPI schema
(``/api/schema/``) publishes it as the ``RechargeNotification`` component.

This module is payments' published contract, the one part of payments a merchant's code may
import (as a merchant would use an SDK): accounts, itself a merchant, validates what it
receives with ``RechargeNotificationSerializer`` and nothing of payments' models or services.
"""

from django.db import models
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.money import MinorUnitsField
from notifications.envelope import EnvelopeSerializer


class RechargeStatus(models.IntegerChoices):
    """A recharge's status on both sides (the seeds' 0/100/200). It only ever moves from
    pending to one of the two final values, never between them."""

    PENDING = 0, "Pending"
    SUCCEEDED = 100, "Succeeded"
    FAILED = 200, "Failed"


# The event type of the notification sent when an order becomes final.
EVENT_TYPES = {
    RechargeStatus.SUCCEEDED: "recharge.succeeded",
    RechargeStatus.FAILED: "recharge.failed",
}


# Real values for the published schema (/api/schema/, /api/docs/), in place of the ones a
# generator makes up from types (amount 9223372036854776000, notify_url "string"); each is
# validated by the serializer it illustrates (tests/test_schema_examples.py).
EXAMPLE_TX_NO = "20261127e3b0c44298fc1c149afb"
EXAMPLE_OUT_TRADE_NO = "SHOP-20261127-0001"
EXAMPLE_RESULT = {
    "tx_no": EXAMPLE_TX_NO,
    "out_trade_no": EXAMPLE_OUT_TRADE_NO,
    "account_no": "AC000000000001",
    "amount": 500,
    "currency": "CNY",
    "status": 100,
    "paid_at": "2026-11-27T14:05:21.318402Z",
    "failure_reason": "",
}
EXAMPLE_NOTIFICATION = {
    "id": "msg_7d9f4c2a6b1e48f0a3c5d7e9f1b3a5c7",
    "type": "recharge.succeeded",
    "created_at": "2026-11-27T14:05:21.324118Z",
    "data": EXAMPLE_RESULT,
}


class RechargeResultSerializer(serializers.Serializer):
    """A recharge as payments reports it: the notification's ``data``, and the core of the
    query API's answer (so reconciliation applies a queried order like a notification)."""

    tx_no = serializers.CharField(max_length=40, help_text="payments' transaction number.")
    out_trade_no = serializers.CharField(max_length=64, help_text="The merchant's order number.")
    account_no = serializers.CharField(max_length=32, help_text="The account to credit.")
    amount = MinorUnitsField(min_value=1, help_text="Minor units (fen, cents), a JSON integer.")
    currency = serializers.CharField(min_length=3, max_length=3, help_text="ISO 4217 code.")
    status = serializers.ChoiceField(
        choices=RechargeStatus.choices, help_text="0 pending, 100 succeeded, 200 failed."
    )
    paid_at = serializers.DateTimeField(
        allow_null=True, required=False, help_text="When it was paid; null unless succeeded."
    )
    # A free string, not a choice, and of no set length: a receiver must not refuse (and so
    # have retried for a day) a notification whose reason a later version of payments added;
    # accounts keeps its first 32 characters. Absent in bodies frozen before the field
    # existed, hence the default.
    failure_reason = serializers.CharField(
        allow_blank=True,
        required=False,
        default="",
        help_text='Why a failed order failed: "expired" (not paid in time), "declined" or '
        '"cancelled" (by the payer); "" unless failed. Other values may be added.',
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "recharge.succeeded",
            value=EXAMPLE_NOTIFICATION,
            description="5.00 CNY paid: amount is 500 fen. A failed one has type "
            "recharge.failed, status 200 and paid_at null.",
            request_only=True,
        )
    ]
)
class RechargeNotificationSerializer(EnvelopeSerializer):
    """A recharge notification as received: the envelope with a recharge result in ``data``."""

    type = serializers.ChoiceField(choices=sorted(EVENT_TYPES.values()))
    data = RechargeResultSerializer()


def recharge_result(order) -> dict:
    """The ``data`` of ``order``'s notification (any object with the result's attributes),
    as JSON-ready values: amount an int of minor units, ``paid_at`` ISO 8601 or None."""
    return dict(RechargeResultSerializer(order).data)
