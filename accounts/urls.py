from django.urls import path

import core.converters  # noqa: F401 - registers the "token" path converter

from . import apis, views

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("recharges/", views.recharge_create, name="recharge-create"),
    path("recharges/<token:out_trade_no>/", views.recharge_status, name="recharge-status"),
    path("api/accounts/notify/", apis.NotifyApi.as_view(), name="notify"),
]
