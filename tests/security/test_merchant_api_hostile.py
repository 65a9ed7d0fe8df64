"""Hostile input at the merchant API: ``POST /api/payments/recharges/`` (create) and
``GET /api/payments/recharges/{tx_no}/`` (query).

Every case asserts the status code, the error message, and that nothing in the database
changed (orders, notifications, ledger, balances, merchants).
"""

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from payments import services
from payments.models import RechargeOrder
from tests.helpers import order_request
from tests.security.conftest import db_state, error_text

CREATE_URL = reverse("payments:recharge-create")
BODY = order_request()  # the valid create request every case starts from
HOSTS = ["merchant.example", "127.0.0.1", "localhost", "10.0.0.1", "169.254.169.254", "[::1]"]


def detail_url(tx_no):
    return f"/api/payments/recharges/{tx_no}/"


@pytest.fixture
def api(merchant_api, merchant):
    """The test merchant's client; the merchant may name a few hostile hosts, so that what
    refuses them below is the SSRF guard and not the host list."""
    services.merchant_allowed_hosts_set(
        merchant=merchant, hosts=HOSTS + ["rebind.example", "metadata.example", "mixed.example"]
    )
    return merchant_api


@pytest.fixture
def no_private_networks(settings):
    """Production's SSRF policy: no private or loopback network allowed."""
    settings.NOTIFY_ALLOWED_NETWORKS = []


def field_error(field, message):
    """A 400 naming ``field`` with ``message`` in its errors."""
    return 400, field, message


# name: (body overrides, expected status, field named in the errors (or "detail"), message)
INVALID = {
    # amount
    "amount: float": ({"amount": 100.5}, *field_error("amount", "JSON integer")),
    "amount: integral float": ({"amount": 100.0}, *field_error("amount", "JSON integer")),
    "amount: string": ({"amount": "1234"}, *field_error("amount", "JSON integer")),
    "amount: boolean": ({"amount": True}, *field_error("amount", "JSON integer")),
    "amount: null": ({"amount": None}, *field_error("amount", "may not be null")),
    "amount: zero": ({"amount": 0}, *field_error("amount", "Must be between 1 and 100000000")),
    "amount: negative": ({"amount": -1}, *field_error("amount", "Must be between 1")),
    "amount: above the maximum": (
        {"amount": 100_000_001},
        *field_error("amount", "Must be between 1 and 100000000"),
    ),
    "amount: 10**30": ({"amount": 10**30}, *field_error("amount", "")),
    "amount: object": ({"amount": {"value": 1}}, *field_error("amount", "JSON integer")),
    # currency
    "currency: unsupported": ({"currency": "XYZ"}, *field_error("currency", "Unsupported")),
    "currency: lower case": ({"currency": "cny"}, *field_error("currency", "Unsupported")),
    "currency: too long": ({"currency": "CNYY"}, *field_error("currency", "Unsupported")),
    "currency: number": ({"currency": 156}, *field_error("currency", "Unsupported")),
    "currency: empty": ({"currency": ""}, *field_error("currency", "Unsupported")),
    # strings: length, charset
    "out_trade_no: 65 chars": ({"out_trade_no": "x" * 65}, *field_error("out_trade_no", "1-64")),
    "out_trade_no: empty": ({"out_trade_no": ""}, *field_error("out_trade_no", "")),
    "out_trade_no: NUL byte": ({"out_trade_no": "A\x00B"}, *field_error("out_trade_no", "Null")),
    "out_trade_no: SQL-ish": (
        {"out_trade_no": "1' OR '1'='1"},
        *field_error("out_trade_no", "1-64"),
    ),
    "out_trade_no: unicode": ({"out_trade_no": "订单1"}, *field_error("out_trade_no", "1-64")),
    "account_no: 33 chars": ({"account_no": "A" * 33}, *field_error("account_no", "1-32")),
    "account_no: path": ({"account_no": "AC/../1"}, *field_error("account_no", "1-32")),
    "notify_url: 513 chars": (
        {"notify_url": "https://merchant.example/" + "n" * 489},
        *field_error("notify_url", "no more than 512"),
    ),
    "return_url: 513 chars": (
        {"return_url": "https://merchant.example/" + "r" * 489},
        *field_error("return_url", "no more than 512"),
    ),
    # URLs: scheme, credentials, allowed hosts
    "notify_url: ftp": (
        {"notify_url": "ftp://merchant.example/notify"},
        *field_error("notify_url", "Must be an http:// or https:// URL."),
    ),
    "notify_url: javascript": (
        {"notify_url": "javascript:alert(1)"},
        *field_error("notify_url", "Enter a valid URL."),
    ),
    "notify_url: credentials": (
        {"notify_url": "https://user:pw@merchant.example/notify"},
        *field_error("notify_url", "Must not contain credentials"),
    ),
    "notify_url: allowed host as userinfo": (
        {"notify_url": "https://merchant.example@evil.example/notify"},
        *field_error("notify_url", "Must not contain credentials"),
    ),
    "notify_url: host not allowed": (
        {"notify_url": "https://evil.example/notify"},
        *field_error("notify_url", "Host 'evil.example' is not among this merchant's allowed"),
    ),
    "notify_url: suffix of an allowed host": (
        {"notify_url": "https://merchant.example.evil.example/notify"},
        *field_error("notify_url", "is not among this merchant's allowed hosts"),
    ),
    "return_url: host not allowed (open redirect)": (
        {"return_url": "https://evil.example/phish"},
        *field_error("return_url", "Host 'evil.example' is not among this merchant's allowed"),
    ),
    "return_url: javascript": (
        {"return_url": "javascript:alert(1)"},
        *field_error("return_url", "Enter a valid URL."),
    ),
    # SSRF: the host is allowed for this merchant, the address is not (production policy)
    "ssrf: 127.0.0.1": (
        {"notify_url": "http://127.0.0.1:8000/notify"},
        *field_error("notify_url", "Refused destination: 127.0.0.1 is a loopback address."),
    ),
    "ssrf: localhost": (
        {"notify_url": "http://localhost/notify"},
        *field_error("notify_url", "localhost resolves to 127.0.0.1 is a loopback address"),
    ),
    "ssrf: [::1]": (
        {"notify_url": "http://[::1]/notify"},
        *field_error("notify_url", "::1 is a loopback address"),
    ),
    "ssrf: 169.254.169.254 (cloud metadata)": (
        {"notify_url": "http://169.254.169.254/latest/meta-data/"},
        *field_error("notify_url", "169.254.169.254 is a cloud metadata address"),
    ),
    "ssrf: 10.0.0.1": (
        {"notify_url": "http://10.0.0.1/notify"},
        *field_error("notify_url", "10.0.0.1 is a private address"),
    ),
    "ssrf: host name resolving to 10.0.0.1": (
        {"notify_url": "https://rebind.example/notify"},
        *field_error("notify_url", "rebind.example resolves to 10.0.0.1 is a private address"),
    ),
    "ssrf: host name resolving to the metadata address": (
        {"notify_url": "https://metadata.example/notify"},
        *field_error("notify_url", "resolves to 169.254.169.254 is a cloud metadata address"),
    ),
    "ssrf: host name resolving to public and private": (
        {"notify_url": "https://mixed.example/notify"},
        *field_error("notify_url", "mixed.example resolves to 192.168.1.10 is a private"),
    ),
}


@pytest.mark.parametrize(
    ("overrides", "status", "field", "message"), INVALID.values(), ids=INVALID.keys()
)
def test_invalid_order_is_refused_and_creates_nothing(
    api, no_private_networks, overrides, status, field, message
):
    """Bad amount, currency, string, URL, host or destination: 400 naming the field with the
    reason, and nothing written."""
    before = db_state()

    response = api.post(CREATE_URL, {**BODY, **overrides}, format="json")

    assert response.status_code == status
    errors = response.json()
    assert field in errors
    assert message in error_text(errors[field])
    assert db_state() == before


RAW_BODIES = {
    "not JSON": ("not json", "application/json", 400, "JSON parse error"),
    "truncated JSON": (json.dumps(BODY)[:40], "application/json", 400, "JSON parse error"),
    "a JSON list": ("[1, 2]", "application/json", 400, "Expected a dictionary"),
    "JSON null": ("null", "application/json", 400, "No data provided"),
    "not UTF-8": (b"\xff\xfe\x00{", "application/json", 400, "JSON parse error"),
    "nested 5000 deep": ("[" * 5000 + "]" * 5000, "application/json", 400, "JSON parse error"),
    "text/plain": (json.dumps(BODY), "text/plain", 415, 'Unsupported media type "text/plain"'),
    "form": (
        "out_trade_no=SHOP-0001&amount=1234",
        "application/x-www-form-urlencoded",
        415,
        "Unsupported media type",
    ),
    "XML": ("<order/>", "application/xml", 415, "Unsupported media type"),
    "oversized": (
        json.dumps({**BODY, "padding": "x" * 20000}),
        "application/json",
        413,
        "Request body too large (limit 16384 bytes).",
    ),
}


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "message"), RAW_BODIES.values(), ids=RAW_BODIES.keys()
)
def test_malformed_body_is_refused_and_creates_nothing(api, raw, content_type, status, message):
    """Not JSON, truncated, not an object, not UTF-8, too deep, another content type or too
    large: the 4xx and reason expected, nothing written."""
    before = db_state()

    response = api.generic("POST", CREATE_URL, raw, content_type=content_type)

    assert response.status_code == status
    assert message in error_text(response.json())
    assert db_state() == before


@pytest.mark.parametrize(
    ("length", "status", "message"),
    [
        (str(10**9), 413, "Request body too large"),
        ("-5", 400, "Invalid Content-Length"),
        ("\u00b2", 400, "Invalid Content-Length"),  # "²".isdigit(), but int() refuses it
    ],
)
def test_declared_length_is_checked_before_reading(api, length, status, message):
    """A Content-Length over the limit is refused before the body is read; a malformed one
    is a 400."""
    before = db_state()

    response = api.generic(
        "POST", CREATE_URL, json.dumps(BODY), content_type="application/json", CONTENT_LENGTH=length
    )

    assert response.status_code == status
    assert message in response.json()["detail"]
    assert db_state() == before


AUTHORIZATION = {
    "no header": (None, "Authentication credentials were not provided."),
    "unknown key": ("Bearer sk_not_a_real_key_at_all", "Unknown or revoked API key."),
    "empty bearer": ("Bearer ", "Authorization must be 'Bearer <api key>'."),
    "Basic scheme": ("Basic dXNlcjpwYXNz", "Authorization must be 'Bearer <api key>'."),
    "overlong key": ("Bearer " + "x" * 200, "Authorization must be 'Bearer <api key>'."),
    "right prefix, wrong rest": (None, "Unknown or revoked API key."),
}


@pytest.mark.parametrize(("authorization", "message"), AUTHORIZATION.values(), ids=AUTHORIZATION)
def test_bad_credentials_are_401_for_create_and_query(
    merchant_credentials, order_factory, authorization, message, request
):
    """Missing, unknown, malformed or near-miss keys: 401 with the reason, on both endpoints,
    and nothing created or revealed."""
    order = order_factory()
    if request.node.callspec.id == "right prefix, wrong rest":
        key = merchant_credentials.api_key
        authorization = f"Bearer {key[:16]}{'A' * (len(key) - 16)}"
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    before = db_state()

    create = client.post(CREATE_URL, BODY, format="json")
    query = client.get(detail_url(order.tx_no))

    for response in (create, query):
        assert response.status_code == 401
        assert response.json() == {"detail": message}
        assert response["WWW-Authenticate"] == "Bearer"
    assert db_state() == before


def test_revoked_key_is_401_and_the_new_key_works(merchant_credentials, merchant):
    """After revoke, the old key is refused at once; the newly issued one works."""
    new_key = services.merchant_api_key_revoke(merchant=merchant)
    old, new = APIClient(), APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"Bearer {merchant_credentials.api_key}")
    new.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key}")
    before = db_state()

    refused = old.post(CREATE_URL, BODY, format="json")

    assert (refused.status_code, refused.json()) == (401, {"detail": "Unknown or revoked API key."})
    assert db_state() == before
    assert new.post(CREATE_URL, BODY, format="json").status_code == 201


# --- another merchant's orders ------------------------------------------------------------


def test_another_merchants_tx_no_is_404_like_an_unknown_one(api, order_factory, other_merchant):
    """Querying another merchant's order: 404 with the same body as an unknown tx_no, so its
    existence is not revealed."""
    theirs = order_factory(merchant=other_merchant)
    before = db_state()

    foreign = api.get(detail_url(theirs.tx_no))
    unknown = api.get(detail_url("20250101deadbeefdeadbeefdead"))

    assert foreign.status_code == unknown.status_code == 404
    assert (
        foreign.json() == unknown.json() == {"detail": "No RechargeOrder matches the given query."}
    )
    assert db_state() == before


def test_create_cannot_target_another_merchant(api, merchant, order_factory, other_merchant):
    """Fields naming another merchant are ignored, and reusing another merchant's
    out_trade_no makes an order of the caller's own: theirs is untouched and unseen."""
    theirs = order_factory(merchant=other_merchant, out_trade_no="SHOP-0001", amount=999)
    body = {**BODY, "merchant": other_merchant.pk, "app_id": other_merchant.app_id}

    response = api.post(CREATE_URL, body, format="json")

    assert response.status_code == 201
    mine = RechargeOrder.objects.get(tx_no=response.json()["tx_no"])
    assert mine.merchant == merchant
    assert mine.tx_no != theirs.tx_no
    theirs.refresh_from_db()
    assert (theirs.merchant, theirs.amount, theirs.status) == (other_merchant, 999, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 9999),
        ("currency", "USD"),
        ("account_no", "AC999"),
        ("notify_url", "https://merchant.example/other"),
    ],
)
def test_reused_out_trade_no_with_tampered_fields_is_409(api, field, value):
    """The same out_trade_no with another amount, currency, account or URL: 409 naming it,
    the order as first created."""
    assert api.post(CREATE_URL, BODY, format="json").status_code == 201
    before = db_state()

    response = api.post(CREATE_URL, {**BODY, field: value}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": "out_trade_no SHOP-0001 was used for a different order"}
    assert db_state() == before


@pytest.mark.parametrize(
    "path",
    [
        detail_url("x" * 65),
        detail_url("TX%00NUL"),
        detail_url("..%2F..%2Fadmin"),
        detail_url("TX'%20OR%20'1'='1"),
        "/api/payments/recharges/a/b/",
    ],
    ids=["65 chars", "NUL byte", "encoded traversal", "SQL-ish", "extra segment"],
)
def test_malformed_tx_no_is_404_json(api, path):
    """A tx_no that cannot be one (too long, NUL, punctuation) never reaches the database:
    404 with a JSON body."""
    before = db_state()

    response = api.get(path)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert db_state() == before


def test_order_creation_is_throttled_per_merchant(api, settings, fresh_throttles, other_merchant):
    """PAYMENTS_CREATE_THROTTLE_RATE bounds creates per merchant: past it, 429 with
    Retry-After and no order; another merchant is not affected."""
    settings.PAYMENTS_CREATE_THROTTLE_RATE = "2/min"
    for number in (1, 2):
        body = {**BODY, "out_trade_no": f"SHOP-{number}"}
        assert api.post(CREATE_URL, body, format="json").status_code == 201
    before = db_state()

    response = api.post(CREATE_URL, {**BODY, "out_trade_no": "SHOP-3"}, format="json")

    assert response.status_code == 429
    assert "Request was throttled" in response.json()["detail"]
    assert 0 < int(response["Retry-After"]) <= 60
    assert db_state() == before
    other_key = services.merchant_api_key_revoke(merchant=other_merchant)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    assert other.post(CREATE_URL, BODY, format="json").status_code == 201


def test_throttle_fails_open_when_the_cache_is_down(api, settings):
    """With the throttle's Redis unreachable, orders are still created (and a warning is
    logged): an outage of the counter store is not an outage of the API."""
    settings.PAYMENTS_CREATE_THROTTLE_RATE = "1/min"
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }

    for number in (1, 2):
        body = {**BODY, "out_trade_no": f"SHOP-{number}"}
        assert api.post(CREATE_URL, body, format="json").status_code == 201
