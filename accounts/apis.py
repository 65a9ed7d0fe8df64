"""``POST /api/accounts/notify/``: where payments delivers recharge notifications."""

import hashlib

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import (
    APIException,
    ParseError,
    Throttled,
    UnsupportedMediaType,
    ValidationError,
)
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.contract import RechargeNotificationSerializer

from . import metrics, services
from .models import InboundNotification
from .throttling import notify_throttle
from .webhooks import InvalidNotification, notification_verify

Outcome = InboundNotification.Outcome
HTTP_STATUS = {
    Outcome.APPLIED: status.HTTP_200_OK,
    Outcome.DUPLICATE: status.HTTP_200_OK,
    Outcome.REJECTED: status.HTTP_409_CONFLICT,
}


# Why a request was refused before anything was recorded, for recharge_receipts_total.
REFUSALS = {
    ParseError: "unverified",  # unsigned, forged, stale or not JSON at all
    UnsupportedMediaType: "not_json",
    ValidationError: "off_contract",
    Throttled: "throttled",
}


class NotifyResultSerializer(serializers.Serializer):
    """What became of a notification; a reused webhook-id (409) has only ``detail``."""

    outcome = serializers.ChoiceField(choices=Outcome.choices, required=False)
    detail = serializers.CharField(allow_blank=True)


class NotifyErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


def _header(name: str, description: str, pattern: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description=description,
        pattern=pattern,
    )


WEBHOOK_HEADERS = [
    _header(
        "webhook-id",
        "Message id; equals the body's id, the same on every retry.",
        r"^[A-Za-z0-9_.:\-]{1,64}$",
    ),
    _header("webhook-timestamp", "Seconds since the epoch, within 5 minutes of now.", r"^\d+$"),
    _header(
        "webhook-signature",
        "Space-separated 'v1,<base64 HMAC-SHA256>' entries, one per active secret.",
        r"^\S+( \S+)*$",
    ),
]


class NotifyApi(APIView):
    """Verify the Standard Webhooks signature on the raw body, throttle, then apply
    idempotently.

    400: unsigned, forged, stale or malformed; 409: disagrees with our recharge (logged for
    staff) or reuses a webhook-id with a different payload; 415: not JSON; 429: throttled,
    verified and failed requests each against a budget of their own (accounts/throttling.py);
    200: applied, or a duplicate of what is already applied.
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    # Throttled in post(), once verification has said which budget a request spends.
    throttle_classes = []

    @extend_schema(
        operation_id="notify_receive",
        summary="Receive a signed recharge notification (Standard Webhooks)",
        parameters=WEBHOOK_HEADERS,
        request=RechargeNotificationSerializer,
        responses={
            200: OpenApiResponse(NotifyResultSerializer, description="Applied or duplicate."),
            400: OpenApiResponse(description="Unsigned, forged, stale, malformed or off-contract."),
            409: OpenApiResponse(
                NotifyResultSerializer,
                description="Disagrees with our recharge, or a seen webhook-id with another "
                "payload.",
            ),
            413: OpenApiResponse(NotifyErrorSerializer, description="Body too large."),
            415: OpenApiResponse(NotifyErrorSerializer, description="Not application/json."),
            429: OpenApiResponse(
                NotifyErrorSerializer,
                description="Throttled, per client address, with Retry-After: a verified "
                "notification past ACCOUNTS_NOTIFY_THROTTLE_RATE, or, in place of the 400 or "
                "415, a request failing verification past "
                "ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE (failures never refuse a verified one).",
            ),
        },
    )
    def post(self, request):
        try:
            payload = _verified_payload(request)
        except (ParseError, UnsupportedMediaType):  # a 415 is unverified junk as much as a 400
            notify_throttle(request, verified=False)
            raise
        notify_throttle(request, verified=True)
        serializer = RechargeNotificationSerializer(data=payload)
        serializer.is_valid(raise_exception=True)
        webhook_id = request.headers["webhook-id"]
        if serializer.validated_data["id"] != webhook_id:
            metrics.receipt_observe(outcome="refused", reason="id_mismatch")
            detail = "payload id does not match the webhook-id header"
            return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
        try:
            outcome, reason = services.notification_receive(
                webhook_id=webhook_id,
                payload=serializer.validated_data,
                payload_sha256=hashlib.sha256(request.body).hexdigest(),
            )
        except services.WebhookIdReused as exc:
            metrics.receipt_observe(outcome="refused", reason="webhook_id_reused")
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        metrics.receipt_observe(outcome=outcome)
        return Response({"outcome": outcome, "detail": reason}, status=HTTP_STATUS[outcome])

    def handle_exception(self, exc):
        """Count a refusal (see ``REFUSALS``) before DRF turns it into its 4xx; anything
        else (a 500) is no receipt and is not counted."""
        if isinstance(exc, APIException):
            reason = REFUSALS.get(type(exc), "other")
            metrics.receipt_observe(outcome="refused", reason=reason)
        return super().handle_exception(exc)


def _verified_payload(request) -> dict:
    """The payload of a JSON request whose signature verifies (``notification_verify``).
    Raises UnsupportedMediaType (415) for another content type, ParseError (400) naming
    what failed otherwise."""
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType(content_type, detail="Content-Type must be application/json.")
    try:
        return notification_verify(body=request.body, headers=dict(request.headers))
    except InvalidNotification as exc:
        raise ParseError(str(exc)) from exc
