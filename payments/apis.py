"""The merchant API: one view per action, each calling one service or selector."""

from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .authentication import MerchantApiKeyAuthentication
from .serializers import RechargeCreateInputSerializer, RechargeOrderOutputSerializer


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class MerchantApi(APIView):
    authentication_classes = [MerchantApiKeyAuthentication]


class RechargeCreateApi(MerchantApi):
    """``POST /api/payments/recharges/``: 201 for a new order, 200 for a repeated
    ``out_trade_no`` with the same parameters, 409 when they differ."""

    def post(self, request):
        serializer = RechargeCreateInputSerializer(data=request.data)
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

    def get(self, request, tx_no):
        orders = selectors.recharge_orders_for_merchant(merchant=request.user)
        order = get_object_or_404(orders, tx_no=tx_no)
        return Response(RechargeOrderOutputSerializer(order).data)
