"""Property-based fuzzing of the published OpenAPI schema with schemathesis.

The schema is loaded from ``/api/schema/`` of the real WSGI application, in-process, and
schemathesis generates valid and invalid requests for every operation (the merchant API,
authenticated with a real key, and the notify endpoint). Whatever it sends, the answer is
never a 5xx, and it conforms to the schema: a documented status code and content type, and
a body matching the documented shape.
"""

import json
import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.conftest import sign

EXAMPLES = 40  # per operation and mode: 6 runs, well under a minute in all
OPERATIONS = [
    ("POST", "/api/payments/recharges/"),
    ("GET", "/api/payments/recharges/"),
    ("GET", "/api/payments/recharges/{tx_no}/"),
    ("POST", "/api/accounts/notify/"),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def with_allowed_urls(case):
    """A generated order whose URLs name the merchant's allowed host (public in the suite's
    fake DNS), so it is created (201), found again (200) or conflicts (409)."""
    if isinstance(case.body, dict):
        case.body = {
            **case.body,
            "notify_url": "https://merchant.example/notify",
            "return_url": "https://merchant.example/return",
        }
    return case


def signed_notification(case):
    """A generated notification body sent as exact bytes and signed with the receiver's
    secret and a fresh timestamp, so it passes verification and reaches validation and the
    receipt and apply code with arbitrary contents."""
    if isinstance(case.body, dict):
        raw = json.dumps(case.body)
        webhook_id = case.body.get("id")
        if not isinstance(webhook_id, str) or not WEBHOOK_ID.match(webhook_id):
            webhook_id = "msg_fuzz"
        headers = sign(raw, webhook_id=webhook_id)
        case.body = raw.encode()
        case.headers = {k: v for k, v in headers.items() if k != "Content-Type"}
    return case


DEEPEN = {
    "POST /api/payments/recharges/": with_allowed_urls,
    "POST /api/accounts/notify/": signed_notification,
}
WEBHOOK_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


@pytest.fixture
def wsgi_keeps_test_connection():
    """Calling the WSGI application directly fires request_started/finished, whose
    ``close_old_connections`` would close the test's database connection (and its open
    transaction) after the first request; Django's own test client disconnects it too."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Driven with Hypothesis' ``@given`` on each operation's strategy rather than through
# schemathesis' pytest plugin, whose lazy-schema loader does not run under pytest 9.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_generated_request_gets_a_5xx(
    db, wsgi_keeps_test_connection, merchant_credentials, method, path, mode
):
    """Any request schemathesis generates for the operation, valid (positive) or not
    (negative), with the merchant's API key: never a 5xx, the status and content type are
    documented, the body matches its schema, and invalid input is refused with a 4xx."""
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    operation = schema[path][method]
    auth = {"Authorization": f"Bearer {merchant_credentials.api_key}"}
    strategy = operation.as_strategy(generation_mode=mode)
    if mode == GenerationMode.POSITIVE:
        # Reach past the checks a schema cannot express, so valid input goes all the way:
        # orders use the merchant's allowed host; notifications are correctly signed.
        strategy = strategy.map(DEEPEN.get(operation.label, lambda case: case))

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        case.call_and_validate(headers=auth, checks=CHECKS)

    fuzz()


def test_schema_and_docs_are_served(client, db):
    """``/api/schema/`` is OpenAPI 3 with the four operations and the bearer scheme;
    ``/api/docs/`` is Swagger UI served with local assets (no CDN)."""
    document = client.get("/api/schema/?format=json").json()
    docs = client.get("/api/docs/").content.decode()

    assert document["openapi"].startswith("3.")
    assert {
        operation["operationId"]
        for path in document["paths"].values()
        for operation in path.values()
    } == {"recharge_create", "recharge_lookup", "recharge_retrieve", "notify_receive"}
    assert document["components"]["securitySchemes"]["merchantApiKey"]["scheme"] == "bearer"
    notify_headers = {
        p["name"] for p in document["paths"]["/api/accounts/notify/"]["post"]["parameters"]
    }
    assert notify_headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert "swagger-ui" in docs
    assert "cdn" not in docs.lower()
