"""Project-wide request limits, applied before any view runs: the surface this process
serves, and the size of the body."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import get_resolver

# Which surface serves each path: the first row whose prefix starts the path decides. The
# Procfile runs this one project in two gunicorns (README "Why two web processes") and each
# serves only its own surface (SERVED_SURFACE), as deploy/nginx.conf routes them:
# - "payments-api" (PAYMENTS_PORT): the merchant API that merchants and accounts'
#   PaymentsClient (ACCOUNTS_PAYMENTS_API_URL) call, its schema and Swagger UI, whose assets
#   are static files;
# - "public" (WEB_PORT): everything else — the wallet pages, log-in, the admin, the cashier
#   page (its URL is built on PAYMENTS_PUBLIC_URL), accounts' notify endpoint (the notify_url
#   accounts gives is built on ACCOUNTS_PUBLIC_URL), static files; and the schema too, which
#   also documents that notify endpoint.
#
# /metrics is on both, for Prometheus scraping each gunicorn directly (INTERNAL_PATHS).
SURFACE_PATHS = (
    ("/metrics", {"payments-api", "public"}),
    ("/api/payments/", {"payments-api"}),
    ("/api/schema/", {"payments-api", "public"}),
    ("/api/docs/", {"payments-api", "public"}),
    ("/static/", {"payments-api", "public"}),
    ("/", {"public"}),
)
# Served by the gunicorns but never by the front: deploy/nginx.conf denies them.
INTERNAL_PATHS = ("/metrics",)
SURFACES = {"all"} | {surface for _, surfaces in SURFACE_PATHS for surface in surfaces}


def surface_serves(surface: str, path: str) -> bool:
    """Whether a process serving ``surface`` serves ``path`` (``SURFACE_PATHS``)."""
    if surface == "all":
        return True
    for prefix, surfaces in SURFACE_PATHS:
        if path.startswith(prefix):
            return surface in surfaces
    return False


class SurfaceMiddleware:
    """Answer 404, with the project's not-found page (JSON under ``/api/``), for a path
    outside the surface this process serves (``SERVED_SURFACE``), before any other
    middleware or view touches the request: no session, no log-in attempt, no write.

    nginx already routes each surface to its own gunicorn in production; this makes each
    gunicorn refuse the other's paths itself, for whoever reaches it directly (development,
    the harness, a front configured differently). An unknown ``SERVED_SURFACE`` stops the
    process at start-up rather than serving a surface nobody meant.
    """

    def __init__(self, get_response):
        if settings.SERVED_SURFACE not in SURFACES:
            raise ImproperlyConfigured(
                f"SERVED_SURFACE is {settings.SERVED_SURFACE!r}; "
                f"expected one of {', '.join(sorted(SURFACES))}"
            )
        self.get_response = get_response

    def __call__(self, request):
        # Read per request, not in __init__: tests switch it with override_settings.
        if surface_serves(settings.SERVED_SURFACE, request.path_info):
            return self.get_response(request)
        # The handler Django calls for an unknown URL when DEBUG is off (handler404): a
        # refused path looks like one that does not exist, and even under DEBUG the page
        # never lists the URL patterns of the surface that is not served here.
        not_found = get_resolver(getattr(request, "urlconf", None)).resolve_error_handler(404)
        return not_found(request, exception=Http404("Not served on this surface."))


class RequestBodyLimitMiddleware:
    """Refuse a request whose declared body is larger than allowed: ``API_MAX_BODY_BYTES``
    under ``/api/``, ``REQUEST_MAX_BODY_BYTES`` elsewhere (forms, admin) → 413; a malformed
    ``Content-Length`` → 400.

    Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only guards ``request.body`` and form parsing;
    DRF's parsers read the stream directly and would not be stopped by it. A body sent
    without a ``Content-Length`` (chunked) is not read at all under WSGI, so the declared
    length is the one that matters.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        api = request.path.startswith("/api/")
        limit = settings.API_MAX_BODY_BYTES if api else settings.REQUEST_MAX_BODY_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not (declared.isascii() and declared.isdigit()):  # "²".isdigit() is True
            return self._refuse(api, 400, "Invalid Content-Length header.")
        if int(declared) > limit:
            return self._refuse(api, 413, f"Request body too large (limit {limit} bytes).")
        return self.get_response(request)

    @staticmethod
    def _refuse(api: bool, status: int, detail: str):
        if api:
            return JsonResponse({"detail": detail}, status=status)
        return HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")
