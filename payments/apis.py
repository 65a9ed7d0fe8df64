"""The merchant API: one view per action, each calling one service or selector."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .authentication import MerchantApiKeyAuthentication
from .contract import EXAMPLE_OUT_TRADE_NO
from .serializers import (
    RechargeCreateInputSerializer,
    RechargeLookupInputSerializer,
    RechargeOrderOutputSerializer,
)
from .throttling import RechargeCreateThrottle


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class ErrorSerializer(serializers.Serializer):
    """The body of a refusal (401, 404, 409, 413, 415, 429); a 400 names each bad field."""

    detail = serializers.CharField()


def refusal(description: str, *examples: tuple[str, dict], schema=ErrorSerializer):
    """A documented refusal with example bodies, each a ``(name, body)`` pair as sent."""
    return OpenApiResponse(
        schema,
        description=description,
        examples=[OpenApiExample(name, value=body) for name, body in examples],
    )


ERRORS = {
    401: refusal(
        "Missing, unknown or revoked API key.",
        ("unknown key", {"detail": "Unknown or revoked API key."}),
    ),
    413: refusal(
        "Body larger than API_MAX_BODY_BYTES.",
        ("too large", {"detail": "Request body too large (limit 16384 bytes)."}),
    ),
}


class MerchantApi(APIView):
    authentication_classes = [MerchantApiKeyAuthentication]


class RechargeCreateApi(MerchantApi):
    """``POST /api/payments/recharges/``: 201 for a new order, 200 for a repeated
    ``out_trade_no`` with the same parameters, 409 when they differ.
    ``GET /api/payments/recharges/?out_trade_no=<x>``: the merchant's order by its own
    number (one URL for both, as REST has it: the collection)."""

    throttle_classes = [RechargeCreateThrottle]

    def get_throttles(self):
        # PAYMENTS_CREATE_THROTTLE_RATE budgets creating orders; a query is not one (the
        # query by tx_no is not throttled either).
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        operation_id="recharge_lookup",
        summary="Find a recharge order by your own out_trade_no",
        description="The order as the query by tx_no answers it, found by the out_trade_no "
        "you gave when creating it; 404 when none of your orders has that number.",
        parameters=[RechargeLookupInputSerializer],
        responses={
            200: RechargeOrderOutputSerializer,
            400: refusal(
                "out_trade_no missing or malformed: named, with why.",
                ("missing", {"out_trade_no": ["This field is required."]}),
                schema=OpenApiTypes.OBJECT,
            ),
            404: refusal(
                "No order of yours by that number.",
                (
                    "not found",
                    {"detail": f"You have no order with out_trade_no '{EXAMPLE_OUT_TRADE_NO}'."},
                ),
            ),
            **ERRORS,
        },
    )
    def get(self, request):
        query = RechargeLookupInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        out_trade_no = query.validated_data["out_trade_no"]
        order = selectors.recharge_order_for_out_trade_no(
            merchant=request.user, out_trade_no=out_trade_no
        )
        if order is None:
            raise NotFound(f"You have no order with out_trade_no {out_trade_no!r}.")
        return Response(RechargeOrderOutputSerializer(order).data)

    @extend_schema(
        operation_id="recharge_create",
        summary="Create a recharge order (idempotent on out_trade_no)",
        description="201 for a new order, 200 for a repeated out_trade_no with the same "
        "parameters, 409 when they differ.",
        request=RechargeCreateInputSerializer,
        responses={
            201: RechargeOrderOutputSerializer,
            200: OpenApiResponse(
                RechargeOrderOutputSerializer, description="The same out_trade_no again."
            ),
            400: refusal(
                "Invalid fields: each bad field is named, with why.",
                (
                    "bad fields",
                    {
                        "amount": ["Must be between 1 and 100000000 minor units."],
                        "notify_url": [
                            "Host 'evil.example' is not among this merchant's allowed hosts."
                        ],
                    },
                ),
                schema=OpenApiTypes.OBJECT,
            ),
            409: refusal(
                "out_trade_no reused.",
                (
                    "reused",
                    {
                        "detail": f"out_trade_no {EXAMPLE_OUT_TRADE_NO} was used for a "
                        "different order"
                    },
                ),
            ),
            415: refusal(
                "Not application/json.",
                ("form", {"detail": 'Unsupported media type "text/plain" in request.'}),
            ),
            429: refusal(
                "PAYMENTS_CREATE_THROTTLE_RATE.",
                (
                    "throttled",
                    {"detail": "Request was throttled. Expected available in 12 seconds."},
                ),
            ),
            **ERRORS,
        },
    )
    def post(self, request):
        serializer = RechargeCreateInputSerializer(
            data=request.data, context={"merchant": request.user}
        )
        serializer.is_valid(raise_exception=True)
        try:
            order, created = services.recharge_order_create(
                merchant=request.user, **serializer.validated_data
            )
        except services.OrderConflict as exc:
            raise Conflict(str(exc)) from exc
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(RechargeOrderOutputSerializer(order).data, status=code)


class RechargeDetailApi(MerchantApi):
    """``GET /api/payments/recharges/{tx_no}/``: the order as it stands (the query interface
    used for reconciliation). Another merchant's tx_no is a 404, like an unknown one."""

    @extend_schema(
        operation_id="recharge_retrieve",
        summary="Query a recharge order (reconciliation)",
        parameters=[
            OpenApiParameter(
                "tx_no",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="The order's transaction number, from the create response.",
                pattern=r"^[A-Za-z0-9_-]{1,64}$",
            )
        ],
        responses={
            200: RechargeOrderOutputSerializer,
            404: refusal(
                "Unknown, or another merchant's.",
                ("not found", {"detail": "No RechargeOrder matches the given query."}),
            ),
            **ERRORS,
        },
    )
    def get(self, request, tx_no):
        orders = selectors.recharge_orders_for_merchant(merchant=request.user)
        order = get_object_or_404(orders, tx_no=tx_no)
        return Response(RechargeOrderOutputSerializer(order).data)
