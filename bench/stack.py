"""The benchmark's own stack: a fresh database, a private Redis, the Procfile's servers and a
Celery worker whose pool and concurrency the scenario chooses.

Built from the same parts as ``devstack`` (``start_redis``, the Procfile's command lines under
honcho) so it measures what ``make run`` runs; it differs only where a benchmark must: its own
database (``recharge_bench`` on PostgreSQL, ``var/bench/bench.sqlite3`` otherwise), its own
Redis on a free port, ``bench.settings`` (the baselines), ``DEBUG`` off, and a worker that is
restarted with each pool under test. Everything it starts is stopped by ``stop()``.
"""

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import redis

from devstack import database
from devstack.redis import free_port, start_redis
from devstack.stack import BIN, ROOT, VAR, ServerUrls, terminate_group, wait_for_port

BENCH_VAR = VAR / "bench"
SQLITE_PATH = BENCH_VAR / "bench.sqlite3"
BENCH_DB_NAME = "recharge_bench"
WEBHOOK_SECRET = "whsec_" + "YmVuY2gtb25seS13ZWJob29rLXNlY3JldC1ub3QtcmVhbA=="
API_KEY = "sk_bench_only_key_not_a_secret_0123456789"
QUEUES = "notifications,periodic,bench"
STOP_TIMEOUT = 20  # seconds a honcho group has for a warm shutdown before SIGKILL


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


def procfile_commands(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """``{name: command}`` from a Procfile."""
    commands = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([\w-]+):\s*(.+)$", line.strip())
        if match:
            commands[match.group(1)] = match.group(2)
    return commands


class BenchStack(ServerUrls):
    """Redis, then two honcho groups: the servers (``web`` and ``payments`` from the Procfile,
    plus the minimal ``receiver``) for the whole run, and a ``worker`` (the Procfile's line with
    ``--pool``/``--concurrency``/``--queues`` appended) started and stopped per scenario."""

    def __init__(self, *, database_url: str, log_path: Path, env: dict | None = None):
        self.database_url = database_url
        self.extra_env = env or {}
        self.redis_version = None
        self.log_path = log_path
        self.web_port, self.payments_port, self.receiver_port = (free_port() for _ in range(3))
        self.redis_url = None
        self.redis_process = None
        self.servers = None
        self.worker = None
        self.worker_desc = None
        self.procfile = BENCH_VAR / "Procfile"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    def environment(self, **overrides) -> dict[str, str]:
        """The environment of every process (and of the driver's Django)."""
        env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
        env.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY=self.secret_key,
            WEB_PORT=str(self.web_port),
            PAYMENTS_PORT=str(self.payments_port),
            RECEIVER_PORT=str(self.receiver_port),
            ACCOUNTS_PAYMENTS_API_URL=self.payments_url,
            ACCOUNTS_PAYMENTS_API_KEY=API_KEY,
            ACCOUNTS_WEBHOOK_SECRETS=WEBHOOK_SECRET,
            PAYMENTS_PUBLIC_URL=self.web_url,
            ACCOUNTS_PUBLIC_URL=self.web_url,
            PYTHONUNBUFFERED="1",
        )
        env.update({key: str(value) for key, value in {**self.extra_env, **overrides}.items()})
        return env

    def start(self) -> "BenchStack":
        """Private Redis, migrate the fresh database, start web, payments and receiver."""
        BENCH_VAR.mkdir(parents=True, exist_ok=True)
        self.secret_key = secrets.token_urlsafe(40)
        self.redis_url, self.redis_process = start_redis(var_dir=BENCH_VAR)
        self.redis_version = redis.Redis.from_url(self.redis_url).info("server")["redis_version"]
        env = self.environment()
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
            env=env,
            check=True,
            cwd=ROOT,
        )
        commands = procfile_commands()
        receiver = (
            "gunicorn bench.receiver:app --bind 127.0.0.1:${RECEIVER_PORT} "
            "--worker-class gthread --workers 2 --threads 8"
        )
        worker = (
            f"{commands['worker']} --pool ${{BENCH_POOL}} --concurrency ${{WORKER_CONCURRENCY}} "
            f"--queues {QUEUES}"
        )
        self.procfile.write_text(
            f"web: {commands['web']}\npayments: {commands['payments']}\n"
            f"receiver: {receiver}\nworker: {worker}\n"
        )
        self.servers = self._honcho(["web", "payments", "receiver"], env)
        for port in (self.web_port, self.payments_port, self.receiver_port):
            wait_for_port(port, process=self.servers)
        return self

    def start_worker(self, *, pool: str, concurrency: int, **overrides) -> None:
        """(Re)start the worker with ``pool`` and ``concurrency``; ``overrides`` are settings
        for it alone. Returns once it answers a ping."""
        from config.celery import app

        self.stop_worker()
        env = self.environment(BENCH_POOL=pool, WORKER_CONCURRENCY=concurrency, **overrides)
        self.worker = self._honcho(["worker"], env)
        self.worker_desc = f"{pool}:{concurrency}"
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5, limit=1):
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"worker {self.worker_desc} did not come up; see {self.log_path}"
                )

    def stop_worker(self) -> None:
        if self.worker is not None:
            terminate_group(self.worker, timeout=STOP_TIMEOUT)
            self.worker = None

    def worker_processes(self) -> list[psutil.Process]:
        """The Celery worker's processes (its main process and, for prefork, the children)."""
        if self.worker is None:
            return []
        try:
            for process in psutil.Process(self.worker.pid).children(recursive=True):
                # honcho runs ``sh -c "celery ..."``: the main process is the first celery
                # one that is not the shell; prefork's pool processes are its children.
                if process.name() not in ("sh", "bash", "dash") and "celery" in " ".join(
                    process.cmdline()
                ):
                    return [process, *process.children(recursive=True)]
        except psutil.Error:
            pass
        return []

    def stop(self) -> None:
        self.stop_worker()
        if self.servers is not None:
            terminate_group(self.servers, timeout=STOP_TIMEOUT)
            self.servers = None
        if self.redis_process is not None and self.redis_process.poll() is None:
            self.redis_process.terminate()
            self.redis_process.wait(timeout=10)
            port = urlsplit(self.redis_url).port
            (BENCH_VAR / f"redis-{port}.log").unlink(missing_ok=True)

    def _honcho(self, names: list[str], env: dict) -> subprocess.Popen:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        try:
            return subprocess.Popen(
                [str(BIN / "honcho"), "-f", str(self.procfile), "-d", str(ROOT), "start", *names],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()


def django_setup(env: dict) -> None:
    """Point this (the driver's) process at the benchmark's database and Redis."""
    os.environ.update(
        {
            key: env[key]
            for key in env
            if key.startswith(("DJANGO_", "DATABASE_", "REDIS_", "ACCOUNTS_", "PAYMENTS_"))
        }
    )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
