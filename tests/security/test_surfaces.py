"""Each gunicorn serves only its own surface (core/middleware.py, ``SERVED_SURFACE``): the
merchant API process refuses the admin, log-in, pages, cashier and notify endpoint; the
public process refuses the merchant API; ``all`` (the default: the test client, a single
process) serves both. A refused path is the project's ordinary 404 and changes nothing."""

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django.urls import reverse

from core.middleware import INTERNAL_PATHS, SURFACE_PATHS, SurfaceMiddleware, surface_serves
from devstack.processes import procfile_commands
from payments.models import RechargeOrder
from tests.helpers import order_request
from tests.security.conftest import db_state

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ROOT = Path(__file__).resolve().parents[2]
CREATE = reverse("payments:recharge-create")


@pytest.fixture
def order(order_factory):
    return order_factory(amount=1234, currency="CNY")


def public_paths(tx_no: str) -> dict:
    """What only the public process serves: ``{name: path}``."""
    return {
        "home": reverse("accounts:home"),
        "recharge form": reverse("accounts:recharge-create"),
        "login": reverse("login"),
        "logout": reverse("logout"),
        "admin": reverse("admin:index"),
        "admin login": reverse("admin:login"),
        "cashier": reverse("payments:cashier", kwargs={"tx_no": tx_no}),
        "notify": reverse("accounts:notify"),
    }


def merchant_api_paths(tx_no: str) -> dict:
    """What only the merchant API process serves: ``{name: path}``."""
    return {
        "create": CREATE,
        "query": reverse("payments:recharge-detail", kwargs={"tx_no": tx_no}),
    }


def assert_project_404(response, path: str) -> None:
    """The project's not-found answer (core/views.py): JSON under /api/, HTML elsewhere."""
    assert response.status_code == 404, (path, response.status_code)
    if path.startswith("/api/"):
        assert response.json() == {"detail": "Not found."}
    else:
        assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("name", list(public_paths("x")))
@pytest.mark.parametrize("method", ["get", "post"])
def test_the_merchant_api_process_refuses_the_public_surface(admin_client, order, name, method):
    """On SERVED_SURFACE=payments-api the pages, log-in, admin (even for staff), cashier and
    notify endpoint are the project's 404, GET or POST, and nothing changes."""
    path = public_paths(order.tx_no)[name]
    before = db_state()

    with override_settings(SERVED_SURFACE="payments-api"):
        response = getattr(admin_client, method)(path)

    assert_project_404(response, path)
    assert db_state() == before


@pytest.mark.parametrize("name", list(merchant_api_paths("x")))
@pytest.mark.parametrize("method", ["get", "post"])
def test_the_public_process_refuses_the_merchant_api(merchant_api, order, name, method):
    """On SERVED_SURFACE=public the merchant API is a JSON 404 even with a valid key and a
    valid order, and nothing is created."""
    path = merchant_api_paths(order.tx_no)[name]
    before = db_state()

    with override_settings(SERVED_SURFACE="public"):
        response = getattr(merchant_api, method)(path, order_request(), format="json")

    assert_project_404(response, path)
    assert db_state() == before


@pytest.mark.parametrize("surface", ["payments-api", "all"])
def test_the_merchant_api_is_served_with_its_schema_and_docs(merchant_api, order, surface):
    """The merchant API process (and a process serving everything) answers the API, the
    OpenAPI schema and Swagger UI."""
    with override_settings(SERVED_SURFACE=surface):
        created = merchant_api.post(CREATE, order_request(), format="json")
        queried = merchant_api.get(merchant_api_paths(order.tx_no)["query"])
        schema = Client().get("/api/schema/")
        docs = Client().get("/api/docs/")

    assert created.status_code == 201
    assert queried.status_code == 200 and queried.json()["tx_no"] == order.tx_no
    assert schema.status_code == 200 and b"openapi" in schema.content
    assert docs.status_code == 200


@pytest.mark.parametrize("surface", ["public", "all"])
def test_the_public_surface_is_served(client, admin_client, order, surface):
    """The public process (and a process serving everything) answers the log-in page, the
    cashier, the admin, the notify endpoint (400 for an empty body: it ran) and the schema,
    which also documents that endpoint, as deploy/nginx.conf's public server does."""
    paths = public_paths(order.tx_no)

    with override_settings(SERVED_SURFACE=surface):
        assert client.get(paths["login"]).status_code == 200
        assert client.get(paths["cashier"]).status_code == 200
        assert admin_client.get(paths["admin"]).status_code == 200
        assert client.post(paths["notify"], {}, content_type="application/json").status_code == 400
        assert client.get("/api/schema/").status_code == 200


def test_a_refused_log_in_logs_nobody_in(client, user):
    """The right password POSTed to the merchant API process's /login/: 404, no session
    cookie, and the same client is still anonymous on the public process."""
    credentials = {"username": "alice", "password": "alice-password"}

    with override_settings(SERVED_SURFACE="payments-api"):
        refused = client.post(reverse("login"), credentials)
    with override_settings(SERVED_SURFACE="public"):
        home = client.get(reverse("accounts:home"))

    assert refused.status_code == 404
    assert "sessionid" not in refused.cookies
    assert home.status_code == 302 and reverse("login") in home["Location"]


def test_a_refused_payment_leaves_the_order_pending(client, order):
    """Pay POSTed at the cashier on the merchant API process: 404, the order still pending,
    no notification; the same POST on the public process pays it."""
    cashier = public_paths(order.tx_no)["cashier"]
    before = db_state()

    with override_settings(SERVED_SURFACE="payments-api"):
        refused = client.post(cashier, {"action": "pay"})

    assert refused.status_code == 404
    assert db_state() == before
    with override_settings(SERVED_SURFACE="public"):
        assert client.post(cashier, {"action": "pay"}).status_code == 302
    assert RechargeOrder.objects.get(pk=order.pk).status == RechargeOrder.Status.SUCCEEDED


def test_an_unknown_surface_stops_the_process_at_start():
    """A misspelt SERVED_SURFACE is ImproperlyConfigured when the middleware is built (a
    gunicorn worker fails to boot) rather than a process serving nothing or everything."""
    with override_settings(SERVED_SURFACE="payment-api"), pytest.raises(ImproperlyConfigured):
        SurfaceMiddleware(lambda request: None)


@pytest.mark.parametrize(
    ("surface", "path", "served"),
    [
        ("payments-api", "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css", True),
        ("public", "/static/admin/css/base.css", True),
        ("public", "/api/payments", True),  # no slash: resolves to nothing; CommonMiddleware
        ("public", "/api/payments/", False),
        ("payments-api", "/", False),
        ("payments-api", "/api/accounts/notify/", False),
        ("payments-api", "/api/payments-evil/", False),
        ("payments-api", "//api/payments/recharges/", False),
    ],
)
def test_the_table_matches_path_prefixes(surface, path, served):
    """``surface_serves``: the first prefix of SURFACE_PATHS that starts the path decides,
    anything unlisted is the public site's."""
    assert surface_serves(surface, path) is served


def test_the_procfile_names_each_gunicorns_surface():
    """The Procfile's web gunicorn serves the public surface and its payments gunicorn the
    merchant API (gunicorn's --env: devstack runs a line as ``exec <line>``, where a
    ``VAR=value`` prefix would be taken for the command)."""
    commands = procfile_commands()

    assert "--env SERVED_SURFACE=public " in commands["web"]
    assert "--env SERVED_SURFACE=payments-api " in commands["payments"]


def test_the_production_front_routes_as_the_table_does():
    """deploy/nginx.conf's merchant API server passes on exactly the payments-api prefixes of
    SURFACE_PATHS and its public server refuses exactly the prefixes only that surface has,
    and denies the internal ones (/metrics) outright, so the front and the gunicorns behind it
    agree."""
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    passed = set(re.findall(r"location (\S+) \{\s*proxy_pass http://payments_app;", config))
    refused = set(re.findall(r"location (\S+) \{\s*return 404;", config)) - {"/"}
    denied = set(re.findall(r"location (\S+) \{\s*deny all;", config))
    api = {prefix for prefix, surfaces in SURFACE_PATHS if "payments-api" in surfaces}

    assert passed == api - set(INTERNAL_PATHS)
    assert refused == {prefix for prefix, surfaces in SURFACE_PATHS if surfaces == {"payments-api"}}
    assert denied == set(INTERNAL_PATHS)
