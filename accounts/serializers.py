"""The shape of an incoming notification (design.md, "HTTP contract")."""

from rest_framework import serializers

from config.money import MinorUnitsField

from .models import Recharge


class RechargeResultSerializer(serializers.Serializer):
    tx_no = serializers.CharField(max_length=40)
    out_trade_no = serializers.CharField(max_length=64)
    account_no = serializers.CharField(max_length=32)
    amount = MinorUnitsField(min_value=1)
    currency = serializers.CharField(min_length=3, max_length=3)
    status = serializers.ChoiceField(choices=Recharge.Status.choices)
    paid_at = serializers.DateTimeField(allow_null=True, required=False)


class NotificationInputSerializer(serializers.Serializer):
    id = serializers.RegexField(
        r"^[A-Za-z0-9_.:\-]{1,64}$",
        help_text="Equals the webhook-id header.",
        error_messages={"invalid": "Use 1-64 letters, digits or _.:-"},
    )
    type = serializers.ChoiceField(choices=["recharge.succeeded", "recharge.failed"])
    created_at = serializers.DateTimeField()
    data = RechargeResultSerializer()
