"""Project-wide error views: API clients get JSON, browsers the usual HTML page."""

from django.http import JsonResponse
from django.views import defaults


def not_found(request, exception):
    """404: ``{"detail": "Not found."}`` under ``/api/``, elsewhere the HTML page of
    ``core/templates/404.html`` (Django's handler renders it)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
