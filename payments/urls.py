from django.urls import include, path

import core.converters  # noqa: F401 - registers the "token" path converter

from . import apis, views

app_name = "payments"

urlpatterns = [
    path("api/payments/recharges/", apis.RechargeCreateApi.as_view(), name="recharge-create"),
    path(
        "api/payments/recharges/<token:tx_no>/",
        apis.RechargeDetailApi.as_view(),
        name="recharge-detail",
    ),
    path("pay/<token:tx_no>/", views.cashier, name="cashier"),
    path("portal/", include("payments.portal.urls")),
]
