"""Fixtures for the end-to-end tests: the real stack on the test database, its merchant, a user.

Nothing is mocked. The test process commits rows (``transactional_db``) that the stack's
processes (web and payments gunicorn, the Celery worker, beat) read and write in the same test
database; they reach each other and the test over HTTP on 127.0.0.1 and through the Redis at
``REDIS_URL`` (``python -m devstack test`` provides one), or the broker ``CELERY_BROKER_URL``
names (RabbitMQ), under this process's ``DEPLOYMENT_NAMESPACE`` unless a test names another.
Each test starts the stacks it needs (``devstack.stack.Stack``) and they are stopped before
pytest-django empties the database.
Each stack's processes log to ``var/e2e/<test>-<n>/<process>.log``; a failed test's report
ends with the tail of each.
"""

import re
from base64 import b64encode
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from accounts.models import Account
from accounts.services import account_create
from config.broker import broker_is_redis
from devstack.broker import rabbitmq_delete
from devstack.database import create_database, drop_database, own_database_url
from devstack.stack import VAR, Stack, manage, stack_environment
from payments.services import MerchantCredentials, merchant_create

# The merchant the stack's accounts side is configured as (ACCOUNTS_PAYMENTS_API_KEY and
# ACCOUNTS_WEBHOOK_SECRETS); fixed so the test process and the stack agree. Test-only values.
API_KEY = "sk_e2e_fixed_test_key_not_a_secret"
WEBHOOK_SECRET = "whsec_" + b64encode(b"e2e-webhook-secret-for-the-stack").decode()
LOG_DIR = VAR / "e2e"
LOG_TAIL_LINES = 150

_STACKS = pytest.StashKey[list]()


@dataclass(frozen=True)
class Customer:
    """A user who can log in to the web app, and their account."""

    username: str
    password: str
    account: Account


def database_url() -> str:
    """A ``DATABASE_URL`` for the database this test process uses: pytest-django's test
    database (for SQLite a file beside the main one, so other processes can open it)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        auth = quote(db["USER"] or "", safe="")
        if db["PASSWORD"]:
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = quote(db["HOST"] or "", safe="")
        port = f":{db['PORT']}" if db["PORT"] else ""
        return f"postgres://{auth}@{host}{port}/{quote(db['NAME'], safe='')}"
    raise NotImplementedError(
        f"the e2e tests support SQLite and PostgreSQL, not {connection.vendor}"
    )


def file_name(request) -> str:
    """The test's name, safe in a file name."""
    return re.sub(r"[^\w.-]+", "_", request.node.name)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            return "".join(deque(log, maxlen=lines))
    except OSError as exc:
        return f"(no log: {exc})"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Append the tail of each stack process's log to the report of a failed test (or
    fixture)."""
    report = yield
    if report.failed:
        for stack in item.stash.get(_STACKS, []):
            for path in sorted(stack.log_dir.glob("*.log")):
                title = f"last {LOG_TAIL_LINES} lines of {path}"
                report.sections.append((title, log_tail(path)))
    return report


@pytest.fixture(autouse=True)
def broker_emptied():
    """Empty the Redis db at ``REDIS_URL`` and, when RabbitMQ is the broker, delete this
    process's namespace's queues there, so no message left by an earlier test (a countdown
    retry restored at worker shutdown, say) is delivered during this one."""
    if not broker_is_redis(settings.CELERY_BROKER_URL):
        try:
            rabbitmq_delete(url=settings.CELERY_BROKER_URL, namespace=settings.DEPLOYMENT_NAMESPACE)
        except (OSError, OperationalError) as exc:
            url = maybe_sanitize_url(settings.CELERY_BROKER_URL)
            pytest.fail(f"the e2e tests need the broker at CELERY_BROKER_URL={url} ({exc})")
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        pytest.fail(
            f"the e2e tests need the Redis at REDIS_URL={settings.REDIS_URL} ({exc}); "
            "run them with `python -m devstack test`, which provides one"
        )
    finally:
        client.close()


@pytest.fixture
def stack_merchant(transactional_db) -> MerchantCredentials:
    """The merchant whose API key and webhook secret the stack's accounts side is given."""
    return merchant_create(name="E2E wallet", api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)


@pytest.fixture
def customer(transactional_db) -> Customer:
    """User ``e2e`` with a CNY account, committed so the web process can log them in."""
    username, password = "e2e", "e2e-password-not-secret"
    user = get_user_model().objects.create_user(username, password=password)
    return Customer(username, password, account_create(user=user, currency="CNY"))


@pytest.fixture
def start_stack(request, transactional_db, broker_emptied, stack_merchant):
    """``start_stack(processes=..., **settings_env)`` → a started ``devstack.stack.Stack`` on
    the test database, ``REDIS_URL`` and this process's namespace, as the stack merchant,
    with jitter off.

    Returns once web and payments accept connections and, if it runs one, the worker answers
    a ping. Keyword arguments are environment variables naming settings
    (``config/settings/``), e.g. ``NOTIFY_RETRY_SCHEDULE="1s,2s"``; they override those
    above (``DATABASE_URL`` and ``DEPLOYMENT_NAMESPACE`` too). Every stack is stopped when
    the test ends, before the database is flushed (this fixture depends on
    ``transactional_db``, so it tears down first), and on RabbitMQ its namespace's queues
    and exchanges are deleted (durable: they would outlive the test).
    """
    stacks = request.node.stash.setdefault(_STACKS, [])
    name = file_name(request)

    def start(*, processes=("web", "payments", "worker"), **overrides) -> Stack:
        stack = Stack(
            settings={
                "DATABASE_URL": database_url(),
                "DEPLOYMENT_NAMESPACE": settings.DEPLOYMENT_NAMESPACE,
                "DB_CONN_MAX_AGE": "0",
                "ACCOUNTS_PAYMENTS_API_KEY": API_KEY,
                "ACCOUNTS_WEBHOOK_SECRETS": WEBHOOK_SECRET,
                "NOTIFY_RETRY_JITTER": "0",
                # Every callback here is over loopback, which the SSRF guard refuses unless
                # named.
                "NOTIFY_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
                "NOTIFY_CONNECT_TIMEOUT": "2",
                "NOTIFY_ATTEMPT_DEADLINE": "10",
                "WORKER_CONCURRENCY": "2",
                **overrides,
            },
            log_dir=LOG_DIR / f"{name}-{len(stacks)}",
            redis_url=settings.REDIS_URL,
        )
        stacks.append(stack)  # before start(), so a stack that fails to come up is stopped
        for old in stack.log_dir.glob("*.log"):
            old.unlink()
        stack.start(*processes)
        return stack

    yield start
    for stack in reversed(stacks):
        stack.close()
        stack.broker_delete()


@pytest.fixture
def second_database(request, transactional_db) -> str:
    """The DATABASE_URL of a second database beside the test database (on its PostgreSQL
    server, or an SQLite file under var/e2e), migrated and seeded as ``make run`` seeds
    (the development merchant, user demo/demo with a CNY account); dropped afterwards.
    Request it before ``start_stack``, so the stacks on it stop before it is dropped."""
    url = own_database_url(
        database_url(),
        name=f"{connection.settings_dict['NAME']}_second",
        sqlite_path=LOG_DIR / "second.sqlite3",
        owner="the e2e tests",
    )
    create_database(url)
    try:
        env = stack_environment({"DATABASE_URL": url, "DJANGO_DEBUG": "1"})
        log = LOG_DIR / f"{file_name(request)}-second-manage.log"
        manage(env, "migrate", "--noinput", "-v", "0", log_path=log)
        manage(env, "seed_demo", log_path=log)
        yield url
    finally:
        drop_database(url)
