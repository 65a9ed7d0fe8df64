"""The stack of one scenario: its Redis, its database, and the Procfile's processes, each in a
process group of its own so that a fault can SIGKILL one of them whole.

``devstack.stack.Stack`` runs the Procfile under honcho, which stops everything as soon as
one process exits; here every process is started (and killed, and started again) on its
own, from the same Procfile lines, through ``sh -c 'exec ...'`` so their ``${VAR:-default}``
expand exactly as under honcho.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import redis
from celery import Celery

# POSTGRES_SCHEMES is re-exported: tests/chaos imports it from here.
from devstack.database import POSTGRES_SCHEMES as POSTGRES_SCHEMES
from devstack.database import create_database, drop_database, is_postgres, own_database_url
from devstack.redis import free_port, start_redis
from devstack.stack import (
    BIN,
    ROOT,
    VAR,
    ServerUrls,
    kill_group,
    terminate_group,
    wait_for_port,
)

CHAOS_VAR = VAR / "chaos"
PROCFILE = ROOT / "Procfile"


# What a process inherits from this one; every setting comes from the scenario, so a variable
# left in the operator's shell (ACCOUNTS_FAULT_DROP, say) cannot change a run.
INHERITED = (
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LOGNAME",
    "SHELL",
    "TERM",
    "TMPDIR",
    "TZ",
    "USER",
)


def hermetic_env(settings: dict) -> dict:
    """The environment of a stack process: the basics of this one, ``settings``, and PATH
    with the virtualenv first."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env["PATH"] = f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env.update(settings)
    return env


def procfile_commands(path: Path = PROCFILE) -> dict[str, str]:
    """``{name: command}`` from a Procfile's ``name: command`` lines."""
    commands = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


class Process:
    """One Procfile process in a new session (its own process group), output to a log."""

    def __init__(self, *, key: str, command: str, env: dict, log_path: Path):
        self.key = key
        self.command = command
        self.env = env
        self.log_path = log_path
        self.popen: subprocess.Popen | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> "Process":
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {self.command}"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group (the main process and its children)."""
        if self.popen is not None:
            kill_group(self.popen)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the group (warm shutdown), SIGKILL whatever outlives ``timeout`` and any
        children a dead main process left behind."""
        if self.popen is not None:
            terminate_group(self.popen, timeout=timeout)


class ChaosStack(ServerUrls):
    """Redis on a port of its own, and any number of Procfile processes, by key.

    ``env`` is the environment of every process (settings as environment variables);
    ``DATABASE_URL`` must be in it. Keys name instances: ``start("beat", key="beat2")``
    runs a second beat.
    """

    def __init__(self, *, env: dict, log_dir: Path):
        self.log_dir = log_dir
        self.web_port = free_port()
        self.payments_port = free_port()
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis_process: subprocess.Popen | None = None
        self.processes: dict[str, Process] = {}
        self.commands = procfile_commands()
        self.env = {
            **hermetic_env(env),
            "REDIS_URL": self.redis_url,
            "WEB_PORT": str(self.web_port),
            "PAYMENTS_PORT": str(self.payments_port),
            "PYTHONUNBUFFERED": "1",
        }
        self.env.setdefault("PAYMENTS_PUBLIC_URL", self.web_url)
        self.env.setdefault("ACCOUNTS_PUBLIC_URL", self.web_url)
        self.env.setdefault("ACCOUNTS_PAYMENTS_API_URL", self.payments_url)
        self._control: Celery | None = None

    # --- Redis -----------------------------------------------------------------------------

    def start_redis(self) -> None:
        """Start an empty redis-server (no persistence) on this stack's port."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _, self.redis_process = start_redis(var_dir=self.log_dir, port=self.redis_port)

    def stop_redis(self) -> None:
        """Stop Redis the hard way (SIGKILL): whatever it held is gone."""
        if self.redis_process is not None and self.redis_process.poll() is None:
            self.redis_process.kill()
            self.redis_process.wait(timeout=10)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=5)

    def flushall(self) -> dict:
        """FLUSHALL; returns what was lost: queued and unacknowledged messages."""
        client = self.redis()
        try:
            lost = {
                "queued": sum(client.llen(q) for q in ("notifications", "periodic")),
                "unacked": client.hlen("unacked"),
            }
            client.flushall()
            return lost
        finally:
            client.close()

    def queue_length(self, queue: str = "notifications") -> int:
        client = self.redis()
        try:
            return client.llen(queue)
        finally:
            client.close()

    # --- Processes -------------------------------------------------------------------------

    def start(self, name: str, *, key: str | None = None, wait: bool = True) -> Process:
        """Start the Procfile process ``name`` as ``key`` (default: the name); with ``wait``,
        return once it is ready (``wait_ready``)."""
        key = key or name
        self.log_dir.mkdir(parents=True, exist_ok=True)
        process = Process(
            key=key,
            command=self.commands[name],
            env=self.env,
            log_path=self.log_dir / f"{key}.log",
        )
        self.processes[key] = process.start()
        if wait:
            self.wait_ready(name, key=key)
        return process

    def wait_ready(self, name: str, *, key: str | None = None) -> None:
        """Until web or payments accepts connections, or a worker answers a ping."""
        key = key or name
        port = {"web": self.web_port, "payments": self.payments_port}.get(name)
        if port is not None:
            wait_for_port(port, timeout=90, process=self.processes[key].popen)
        elif name == "worker":
            self.wait_for_worker(key=key)

    def kill(self, key: str) -> None:
        self.processes[key].kill()

    def stop(self, key: str) -> None:
        self.processes[key].stop()

    def alive(self, key: str) -> bool:
        return key in self.processes and self.processes[key].alive

    def control(self) -> Celery:
        """A bare Celery client of this stack's Redis: pings and hand-sent messages."""
        if self._control is None:
            self._control = Celery("chaos", broker=self.redis_url, set_as_current=False)
            self._control.conf.update(
                task_serializer="json",
                accept_content=["json"],
                broker_connection_retry_on_startup=True,
            )
        return self._control

    def wait_for_worker(self, *, key: str = "worker", timeout: float = 90) -> None:
        """Until a worker answers a ping. Raises RuntimeError if ``key`` exits or on timeout."""
        deadline = time.monotonic() + timeout
        while not self.control().control.ping(timeout=0.5):
            if not self.alive(key):
                raise RuntimeError(f"{key} exited during startup (see {self.log_dir})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no worker answered a ping within {timeout:.0f}s")

    def send_deliver(self, notification_id: str) -> None:
        """Publish one ``notifications.deliver`` message by hand, as a duplicate would be."""
        self.control().send_task(
            "notifications.deliver", args=[str(notification_id)], queue="notifications"
        )

    def close(self) -> None:
        """Stop every process (warm shutdown, then SIGKILL), then Redis."""
        for process in reversed(list(self.processes.values())):
            process.stop()
        if self._control is not None:
            self._control.close()
        self.stop_redis()


# --- The database ---------------------------------------------------------------------------


class ChaosDatabase:
    """The scenario database, recreated for every scenario from a template migrated once.

    PostgreSQL when ``base_url`` names it (``name`` and ``name_template`` on that server; the
    database ``base_url`` itself names is never touched: SystemExit if it is one of those),
    else SQLite files under var/chaos.
    """

    def __init__(self, *, base_url: str | None, name: str):
        self.postgres = is_postgres(base_url)
        self.url, self.template_url = (
            own_database_url(
                base_url, name=own, sqlite_path=CHAOS_VAR / f"{own}.sqlite3", owner="the chaos run"
            )
            for own in (name, f"{name}_template")
        )

    @property
    def vendor(self) -> str:
        return "postgresql" if self.postgres else "sqlite"

    def build_template(self, *, env: dict, users: int, log_path: Path) -> None:
        """Create the template: migrate, the dev merchant, users demo1..``users``."""
        create_database(self.template_url)
        env = hermetic_env({**env, "DATABASE_URL": self.template_url})
        manage = [sys.executable, str(ROOT / "manage.py")]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            for command in (["migrate", "--noinput"], ["seed_demo", "--users", str(users)]):
                subprocess.run(
                    [*manage, *command],
                    env=env,
                    cwd=ROOT,
                    check=True,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

    def recreate(self) -> None:
        """A fresh scenario database, a copy of the template. Close Django's connections to it
        first (``django.db.connections.close_all()``)."""
        create_database(self.url, template_url=self.template_url)

    def drop_template(self) -> None:
        drop_database(self.template_url)
