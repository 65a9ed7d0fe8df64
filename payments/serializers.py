"""Input and output shapes of the merchant API."""

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from config.money import MinorUnitsField

from .models import RechargeOrder


class RechargeCreateInputSerializer(serializers.Serializer):
    out_trade_no = serializers.RegexField(
        r"^[A-Za-z0-9_\-]{1,64}$",
        error_messages={"invalid": "Use 1-64 letters, digits, '_' or '-'."},
    )
    account_no = serializers.RegexField(
        r"^[A-Za-z0-9_\-]{1,32}$",
        error_messages={"invalid": "Use 1-32 letters, digits, '_' or '-'."},
    )
    amount = MinorUnitsField()
    currency = serializers.CharField(max_length=3)
    notify_url = serializers.URLField(max_length=512)
    return_url = serializers.URLField(max_length=512)

    def validate_amount(self, value):
        low, high = settings.PAYMENTS_MIN_AMOUNT, settings.PAYMENTS_MAX_AMOUNT
        if not low <= value <= high:
            raise serializers.ValidationError(f"Must be between {low} and {high} minor units.")
        return value

    def validate_currency(self, value):
        if value not in settings.PAYMENTS_CURRENCIES:
            allowed = ", ".join(settings.PAYMENTS_CURRENCIES)
            raise serializers.ValidationError(f"Unsupported currency; use one of {allowed}.")
        return value

    def validate_notify_url(self, value):
        return _http_url(value)

    def validate_return_url(self, value):
        return _http_url(value)


class RechargeOrderOutputSerializer(serializers.ModelSerializer):
    cashier_url = serializers.SerializerMethodField()

    class Meta:
        model = RechargeOrder
        fields = [
            "tx_no",
            "out_trade_no",
            "account_no",
            "amount",
            "currency",
            "status",
            "notify_url",
            "return_url",
            "created_at",
            "paid_at",
            "cashier_url",
        ]

    def get_cashier_url(self, order) -> str:
        path = reverse("payments:cashier", kwargs={"tx_no": order.tx_no})
        return settings.PAYMENTS_PUBLIC_URL.rstrip("/") + path


def _http_url(value: str) -> str:
    if not value.lower().startswith(("http://", "https://")):
        raise serializers.ValidationError("Must be an http:// or https:// URL.")
    return value
