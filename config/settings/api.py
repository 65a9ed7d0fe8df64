"""The HTTP APIs: request limits, the surface this process serves, Django REST framework and
the published OpenAPI schema."""

from .env import env

# Declared bodies larger than these are refused with 413 before any view reads them
# (core/middleware.py): API endpoints take small JSON documents; forms and the admin more.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=16 * 1024)
REQUEST_MAX_BODY_BYTES = env.int("REQUEST_MAX_BODY_BYTES", default=256 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# Which of the project's HTTP surfaces this process serves (core/middleware.py, whose
# SURFACE_PATHS table says which paths each one is): "public" (the wallet pages, log-in,
# admin, cashier, accounts' notify endpoint), "payments-api" (the merchant API and its
# schema), or "all". The Procfile's two gunicorns each name theirs, so a path of the other
# surface is a 404 there even without nginx in front. "all" by default because one process
# serving everything (the test client, `manage.py runserver`, a single-process deployment)
# must keep working with no setting at all.
SERVED_SURFACE = env("SERVED_SURFACE", default="all")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONObjectParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Trusted reverse proxies in front of gunicorn: with 0, throttles key on REMOTE_ADDR and
    # ignore X-Forwarded-For (a client could write anything there).
    "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=0),
}

# OpenAPI 3 of the merchant and notify APIs, served at /api/schema/ and /api/docs/; the
# Swagger UI assets come from drf-spectacular-sidecar (no CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "Recharge payments API",
    "DESCRIPTION": "The merchant API (create and query recharge orders, Bearer API key) and the "
    "notify endpoint receiving Standard Webhooks-signed recharge notifications.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
