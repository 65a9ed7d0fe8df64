from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.views import LoginView, LogoutView
from core import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    # OpenAPI 3 of the merchant and notify APIs, and Swagger UI on it (assets served locally).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Prometheus; on both gunicorns, never through the front (deploy/nginx.conf).
    path("metrics", views.metrics, name="metrics"),
    path("", include("payments.urls")),
    path("", include("accounts.urls")),
]

handler404 = views.not_found
