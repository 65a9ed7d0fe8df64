from django.urls import path

from . import apis, views

app_name = "payments"

urlpatterns = [
    path("api/payments/recharges/", apis.RechargeCreateApi.as_view(), name="recharge-create"),
    path(
        "api/payments/recharges/<str:tx_no>/",
        apis.RechargeDetailApi.as_view(),
        name="recharge-detail",
    ),
    path("pay/<str:tx_no>/", views.cashier, name="cashier"),
]
