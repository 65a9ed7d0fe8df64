"""``POST /api/accounts/notify/``: where payments delivers recharge notifications."""

from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .models import InboundNotification
from .serializers import NotificationInputSerializer
from .webhooks import InvalidNotification, notification_verify

Outcome = InboundNotification.Outcome
HTTP_STATUS = {
    Outcome.APPLIED: status.HTTP_200_OK,
    Outcome.DUPLICATE: status.HTTP_200_OK,
    Outcome.DROPPED: status.HTTP_200_OK,
    Outcome.REFUSED: status.HTTP_503_SERVICE_UNAVAILABLE,
    Outcome.REJECTED: status.HTTP_409_CONFLICT,
}


class NotifyApi(APIView):
    """Verify the Standard Webhooks signature on the raw body, then apply idempotently.

    400: unsigned, forged, stale or malformed; 409: disagrees with our recharge (logged for
    staff); 200: applied, or a duplicate of what is already applied.
    """

    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        try:
            payload = notification_verify(body=request.body, headers=dict(request.headers))
        except InvalidNotification as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        serializer = NotificationInputSerializer(data=payload)
        serializer.is_valid(raise_exception=True)
        webhook_id = request.headers["webhook-id"]
        if serializer.validated_data["id"] != webhook_id:
            detail = "payload id does not match the webhook-id header"
            return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
        outcome, reason = services.notification_receive(
            webhook_id=webhook_id, payload=serializer.validated_data
        )
        return Response({"outcome": outcome, "detail": reason}, status=HTTP_STATUS[outcome])
