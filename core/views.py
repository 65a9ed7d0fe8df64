"""Project-wide views: the error pages (API clients get JSON, browsers the usual HTML page)
and ``/metrics``."""

import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .metrics import metrics_registry


def not_found(request, exception):
    """404: ``{"detail": "Not found."}`` under ``/api/``, elsewhere the HTML page of
    ``core/templates/404.html`` (Django's handler renders it)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


@require_GET
def metrics(request):
    """Prometheus text format (``core.metrics``). With ``METRICS_TOKEN`` set, only for
    ``Authorization: Bearer <METRICS_TOKEN>``: anything else is a 401 saying what is missing."""
    # Stripped, as production's check measures it: a secret file's newline must not lock
    # every scrape out.
    token = settings.METRICS_TOKEN.strip()
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return _unauthorized("Send Authorization: Bearer <METRICS_TOKEN>.")
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            return _unauthorized("Wrong metrics token.")
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)


def _unauthorized(reason: str) -> HttpResponse:
    response = HttpResponse(reason, status=401, content_type="text/plain; charset=utf-8")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response
