"""The whole stack (Redis, web, payments API, worker, beat) as one object to start and stop."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .redis import ensure_redis, free_port

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
BIN = Path(sys.executable).parent


def wait_for_port(port: int, *, timeout: float = 30, process: subprocess.Popen | None = None):
    """Block until something accepts connections on 127.0.0.1:``port``.

    Raises RuntimeError on timeout or when ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before port {port} opened"
            )
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Send ``signum`` to the process group ``process`` leads (it was started with
    ``start_new_session=True``); a group that is already gone is no error."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group ``process`` leads, then reap ``process``."""
    _signal_group(process, signal.SIGKILL)
    process.wait()


def terminate_group(process: subprocess.Popen, *, timeout: float = 15) -> None:
    """Stop the process group ``process`` leads (honcho and its children, say): SIGTERM for a
    warm shutdown, up to ``timeout`` seconds for ``process`` to exit, then SIGKILL for the
    group. The SIGKILL comes even after a clean exit: a child that outlived its parent (a
    prefork pool process, say) would otherwise be left running. Returns once ``process`` is
    reaped; an exited ``process`` or an empty group is no error."""
    _signal_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    kill_group(process)


class ServerUrls:
    """``web_url`` and ``payments_url`` of a stack whose gunicorns listen on 127.0.0.1 at
    ``web_port`` and ``payments_port``."""

    web_port: int
    payments_port: int

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def payments_url(self) -> str:
        return f"http://127.0.0.1:{self.payments_port}"


class Stack(ServerUrls):
    """Redis (found or started), then the Procfile's processes under honcho.

    ``env`` overrides settings for every process (e.g. a compressed retry schedule);
    ``web_port`` 0 picks free ports. Use as a context manager; ``stop()`` ends everything
    it started, Redis included.
    """

    def __init__(
        self,
        *,
        processes=("web", "payments", "worker", "beat"),
        env=None,
        web_port: int = 0,
        payments_port: int = 0,
        log_path: Path | None = None,
    ):
        self.processes = processes
        self.extra_env = env or {}
        self.web_port = web_port or free_port()
        self.payments_port = payments_port or free_port()
        self.log_path = log_path
        self.redis_process = None
        self.honcho = None

    def environment(self) -> dict:
        """The environment every process of the stack runs with."""
        redis_url, self.redis_process = ensure_redis(var_dir=VAR)
        env = {**os.environ, "REDIS_URL": redis_url, "PATH": f"{BIN}:{os.environ['PATH']}"}
        env.update(
            WEB_PORT=str(self.web_port),
            PAYMENTS_PORT=str(self.payments_port),
            ACCOUNTS_PAYMENTS_API_URL=self.payments_url,
            PAYMENTS_PUBLIC_URL=os.environ.get("PAYMENTS_PUBLIC_URL", self.web_url),
            ACCOUNTS_PUBLIC_URL=os.environ.get("ACCOUNTS_PUBLIC_URL", self.web_url),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def prepare(self, env: dict) -> None:
        """Migrate and, in development, seed the demo merchant and users."""
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=ROOT)
        subprocess.run([*manage, "seed_demo"], env=env, check=True, cwd=ROOT)

    def start(self, *, prepare: bool = True) -> "Stack":
        env = self.environment()
        if prepare:
            self.prepare(env)
        out = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        try:
            self.honcho = subprocess.Popen(
                [str(BIN / "honcho"), "-f", str(ROOT / "Procfile"), "start", *self.processes],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )
        finally:
            if out:
                out.close()  # the child holds its own descriptor
        for name, port in (("web", self.web_port), ("payments", self.payments_port)):
            if name in self.processes:
                wait_for_port(port, process=self.honcho)
        return self

    def stop(self) -> None:
        if self.honcho and self.honcho.poll() is None:
            terminate_group(self.honcho)
        if self.redis_process and self.redis_process.poll() is None:
            self.redis_process.terminate()
            self.redis_process.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
