"""Input and output shapes of the merchant API."""

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.money import MinorUnitsField
from notifications.queues import SCHEME as QUEUE_SCHEME

from .contract import EXAMPLE_OUT_TRADE_NO, EXAMPLE_RESULT, EXAMPLE_TX_NO, RechargeResultSerializer
from .selectors import merchant_url_refusal

# A create request and the orders it yields, for the published schema (contract.py).
EXAMPLE_ORDER_REQUEST = {
    "out_trade_no": EXAMPLE_OUT_TRADE_NO,
    "account_no": EXAMPLE_RESULT["account_no"],
    "amount": EXAMPLE_RESULT["amount"],
    "currency": EXAMPLE_RESULT["currency"],
    "notify_url": "https://shop.example/api/payments/notify/",
    "return_url": f"https://shop.example/recharges/{EXAMPLE_OUT_TRADE_NO}/",
}
EXAMPLE_ORDER = {
    **EXAMPLE_RESULT,
    "status": 0,
    "paid_at": None,
    "notify_url": EXAMPLE_ORDER_REQUEST["notify_url"],
    "return_url": EXAMPLE_ORDER_REQUEST["return_url"],
    "created_at": "2026-11-27T14:04:58.107341Z",
    "cashier_url": f"https://pay.example/pay/{EXAMPLE_TX_NO}/",
}


def out_trade_no_field() -> serializers.RegexField:
    """The merchant's own order number, as the API accepts it wherever it is given."""
    return serializers.RegexField(
        r"^[A-Za-z0-9_\-]{1,64}$",
        error_messages={"invalid": "Use 1-64 letters, digits, '_' or '-'."},
        help_text="Your own order number: 1-64 letters, digits, '_' or '-'.",
    )


class NotifyUrlField(serializers.URLField):
    """An http(s) URL, or a ``queue://<name>`` target, which Django's URL validator would
    refuse for its scheme: ``merchant_url_refusal`` checks that one (and the others) instead."""

    def run_validators(self, value):
        if not value.startswith(QUEUE_SCHEME):
            super().run_validators(value)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "5.00 CNY",
            value=EXAMPLE_ORDER_REQUEST,
            description="amount in minor units: 500 fen is 5.00 CNY. Both URLs on a host "
            "among your allowed hosts (create_merchant --allowed-host).",
            request_only=True,
        )
    ]
)
class RechargeCreateInputSerializer(serializers.Serializer):
    """An order to create; needs ``context={"merchant": ...}`` to check its URLs against
    the merchant's allowed hosts."""

    out_trade_no = out_trade_no_field()
    account_no = serializers.RegexField(
        r"^[A-Za-z0-9_\-]{1,32}$",
        error_messages={"invalid": "Use 1-32 letters, digits, '_' or '-'."},
    )
    amount = MinorUnitsField(help_text="Minor units (fen, cents), a JSON integer.")
    currency = serializers.ChoiceField(
        choices=(), help_text="ISO 4217, one of PAYMENTS_CURRENCIES."
    )
    notify_url = NotifyUrlField(
        max_length=512,
        help_text="Where notifications are POSTed: http(s), a host among the merchant's "
        "allowed hosts, not resolving to a private, loopback or metadata address. Or "
        "queue://<name> for an internal subscriber, a queue staff gave the merchant.",
    )
    return_url = serializers.URLField(
        max_length=512,
        help_text="Where the payer's browser goes after paying: http(s), an allowed host.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The limits are settings, read when the serializer is made (never at import); the
        # OpenAPI schema shows them too. validate_amount enforces the amount range with its
        # own message; min_value/max_value here only describe it.
        currencies = list(settings.PAYMENTS_CURRENCIES)
        currency = self.fields["currency"]
        currency.choices = currencies
        currency.error_messages["invalid_choice"] = (
            f"Unsupported currency; use one of {', '.join(currencies)}."
        )
        amount = self.fields["amount"]
        amount.min_value, amount.max_value = (
            settings.PAYMENTS_MIN_AMOUNT,
            settings.PAYMENTS_MAX_AMOUNT,
        )

    def validate_amount(self, value):
        low, high = settings.PAYMENTS_MIN_AMOUNT, settings.PAYMENTS_MAX_AMOUNT
        if not low <= value <= high:
            raise serializers.ValidationError(f"Must be between {low} and {high} minor units.")
        return value

    def validate_notify_url(self, value):
        return self._merchant_url(value, notify=True)

    def validate_return_url(self, value):
        return self._merchant_url(value, notify=False)

    def _merchant_url(self, value: str, *, notify: bool) -> str:
        reason = merchant_url_refusal(merchant=self.context["merchant"], url=value, notify=notify)
        if reason:
            raise serializers.ValidationError(reason)
        return value


class RechargeLookupInputSerializer(serializers.Serializer):
    """The query string of ``GET /api/payments/recharges/``: which order to find."""

    out_trade_no = out_trade_no_field()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "pending",
            value=EXAMPLE_ORDER,
            description="Just created (or not paid yet): send the payer to cashier_url.",
            response_only=True,
        ),
        OpenApiExample(
            "succeeded",
            value={**EXAMPLE_ORDER, "status": 100, "paid_at": EXAMPLE_RESULT["paid_at"]},
            description="Paid: what the notification said, and what reconciliation applies.",
            response_only=True,
            status_codes=["200"],
        ),
    ]
)
class RechargeOrderOutputSerializer(RechargeResultSerializer):
    """An order as the merchant API answers it: the recharge result a notification carries
    (``payments.contract``), plus the order's URLs, its creation time and the cashier URL."""

    notify_url = serializers.URLField()
    return_url = serializers.URLField()
    created_at = serializers.DateTimeField()
    cashier_url = serializers.SerializerMethodField()

    def get_cashier_url(self, order) -> str:
        path = reverse("payments:cashier", kwargs={"tx_no": order.tx_no})
        return settings.PAYMENTS_PUBLIC_URL.rstrip("/") + path
