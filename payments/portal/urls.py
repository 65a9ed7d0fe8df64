from django.urls import path
from django.views.generic import RedirectView

import core.converters  # noqa: F401 - registers the "token" path converter

from . import views

app_name = "portal"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="payments:portal:orders"), name="index"),
    path("login/", views.PortalLoginView.as_view(), name="login"),
    path("orders/", views.orders, name="orders"),
    path("orders/resend/", views.orders_resend, name="orders-resend"),
    path("orders/<token:tx_no>/", views.order_detail, name="order"),
    path("endpoints/", views.endpoints, name="endpoints"),
    path("endpoints/<int:endpoint_id>/recover/", views.endpoint_recover, name="endpoint-recover"),
    path("endpoints/<int:endpoint_id>/enable/", views.endpoint_enable, name="endpoint-enable"),
    path("settings/", views.credentials, name="settings"),
    path("settings/webhook-secret/", views.webhook_secret_roll, name="webhook-secret-roll"),
    path("settings/api-key/", views.api_key_roll, name="api-key-roll"),
    path("guide/", views.guide, name="guide"),
]
