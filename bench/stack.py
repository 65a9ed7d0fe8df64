"""The benchmark's stack: ``devstack.stack.Stack`` as ``make run`` runs it, with what a
benchmark needs besides: its own database (``recharge_bench`` on PostgreSQL,
``var/bench/bench.sqlite3`` otherwise), a private Redis, ``bench.settings`` (the baselines),
``DEBUG`` off, the instant receiver (``bench/receiver.py`` under gunicorn, the server
``receiver``), the merchants' receivers (``bench/echo.py`` on ``ECHO_PORT`` and the ports in
``ECHO_PORTS``, the server ``echo``: one origin each), and a worker restarted with each pool
under test (``start_worker``).
"""

import os
import secrets
from pathlib import Path

from devstack import database
from devstack.redis import free_port
from devstack.stack import VAR, Stack, django_setup

BENCH_VAR = VAR / "bench"
SQLITE_PATH = BENCH_VAR / "bench.sqlite3"
BENCH_DB_NAME = "recharge_bench"
WEBHOOK_SECRET = "whsec_" + "YmVuY2gtb25seS13ZWJob29rLXNlY3JldC1ub3QtcmVhbA=="
API_KEY = "sk_bench_only_key_not_a_secret_0123456789"
QUEUES = "notifications,periodic,bench"
RECEIVER = (
    "gunicorn bench.receiver:app --bind 127.0.0.1:${RECEIVER_PORT} "
    "--worker-class gthread --workers 2 --threads 8"
)
ECHO = "python -m bench.echo --ports ${ECHO_PORT},${ECHO_PORTS}"
# Worker settings that keep an endpoint's circuit closed whatever it answers (neither
# threshold is ever reached): every due retry is attempted.
CIRCUIT_OFF = {"NOTIFY_CIRCUIT_FAILURES": 10**9, "NOTIFY_CIRCUIT_MIN_ATTEMPTS": 10**9}


def fresh_database(database_url: str | None) -> str:
    """Create an empty benchmark database and return its DATABASE_URL: ``recharge_bench`` on
    the PostgreSQL server ``database_url`` names, else var/bench/bench.sqlite3. Raises
    SystemExit when ``database_url`` names ``recharge_bench`` itself."""
    return database.fresh_database(
        database_url, name=BENCH_DB_NAME, sqlite_path=SQLITE_PATH, owner="the benchmark"
    )


def drop_database(database_url: str) -> None:
    """Drop ``recharge_bench`` again (PostgreSQL); SQLite files stay for inspection."""
    if not database.is_postgres(database_url):
        return
    if database.database_name(database_url) == BENCH_DB_NAME:  # only ever ours
        database.drop_database(database_url)


def fresh_stack(*, log_dir: Path, settings: dict | None = None, origins: int = 16) -> Stack:
    """The stack on a fresh benchmark database (``fresh_database`` of DATABASE_URL), not
    started; ``settings`` override any setting; ``origins``: ports the echo server listens
    on (at least 2)."""
    extra_ports = ",".join(str(free_port()) for _ in range(max(1, origins - 1)))
    return Stack(
        settings={
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": fresh_database(os.environ.get("DATABASE_URL")),
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "DEPLOYMENT_NAMESPACE": "bench",
            "ACCOUNTS_PAYMENTS_API_KEY": API_KEY,
            "ACCOUNTS_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "ECHO_PORTS": extra_ports,
            **(settings or {}),
        },
        log_dir=log_dir,
        servers={"receiver": RECEIVER, "echo": ECHO},
    )


def start_bench(stack: Stack) -> str:
    """Private Redis, the database migrated, web, payments and the receiver started, this
    process's Django pointed at the stack, and the merchant whose notifications are sent
    (with the accounts side's API key and secret); returns its app_id."""
    stack.open()
    stack.manage("migrate", "--noinput", "-v", "0")
    stack.start("web", "payments", "receiver", "echo")
    django_setup(stack.env)
    from payments.services import merchant_create

    credentials = merchant_create(name="Bench", api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    return credentials.merchant.app_id


def close_bench(stack: Stack, *, keep_db: bool = False) -> None:
    """Stop everything the stack started; drop its database unless ``keep_db``."""
    stack.close()
    if not keep_db:
        drop_database(stack.env["DATABASE_URL"])


def start_worker(stack: Stack, *, pool: str, concurrency: int, **overrides) -> None:
    """(Re)start the Procfile's worker with ``pool`` and ``concurrency`` on the benchmark's
    queues; ``overrides`` are settings for it alone. Returns once it answers a ping; raises
    RuntimeError when it does not come up."""
    stack.launch(
        "worker",
        args=f"--pool {pool} --concurrency {concurrency} --queues {QUEUES}",
        env=overrides,
    )
    stack.wait_ready("worker", timeout=60)


def echo_origins(stack: Stack) -> list[str]:
    """``http://127.0.0.1:<port>`` for every port the echo server listens on."""
    ports = [stack.ports["echo"], *stack.env["ECHO_PORTS"].split(",")]
    return [f"http://127.0.0.1:{port}" for port in ports]
