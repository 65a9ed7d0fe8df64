"""The recharge notification, defined once: what payments POSTs to a merchant's notify_url and
what a receiver accepts. docs/notifications.md documents it; the OpenAPI schema
(``/api/schema/``) publishes it as the ``RechargeNotification`` component.

This module is payments' published contract, the one part of payments a merchant's code may
import (as a merchant would use an SDK): accounts, itself a merchant, validates what it
receives with ``RechargeNotificationSerializer`` and nothing of payments' models or services.
"""

from django.db import models
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
    # A free string, not a choice: a receiver must not refuse (and so have retried for a day)
    # a notification whose reason a later version of payments added. Absent in bodies frozen
    # before the field existed, hence the default.
    failure_reason = serializers.CharField(
        max_length=32,
        allow_blank=True,
        required=False,
        default="",
        help_text='Why a failed order failed: "expired" (not paid in time), "declined" or '
        '"cancelled" (by the payer); "" unless failed. Other values may be added.',
    )


class RechargeNotificationSerializer(EnvelopeSerializer):
    """A recharge notification as received: the envelope with a recharge result in ``data``."""

    type = serializers.ChoiceField(choices=sorted(EVENT_TYPES.values()))
    data = RechargeResultSerializer()


def recharge_result(order) -> dict:
    """The ``data`` of ``order``'s notification (any object with the result's attributes),
    as JSON-ready values: amount an int of minor units, ``paid_at`` ISO 8601 or None."""
    return dict(RechargeResultSerializer(order).data)
