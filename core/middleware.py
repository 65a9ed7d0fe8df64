"""Project-wide request limits, applied before any view reads the body."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse


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
        if not declared.isdigit():
            return self._refuse(api, 400, "Invalid Content-Length header.")
        if int(declared) > limit:
            return self._refuse(api, 413, f"Request body too large (limit {limit} bytes).")
        return self.get_response(request)

    @staticmethod
    def _refuse(api: bool, status: int, detail: str):
        if api:
            return JsonResponse({"detail": detail}, status=status)
        return HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")
