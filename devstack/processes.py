"""The Procfile's processes, one at a time: each in a session (process group) of its own, so
that one can be stopped or SIGKILLed whole (a Celery worker with its pool, a gunicorn with
its workers) while the others run on.

A Procfile line is run as ``sh -c 'exec <line>'`` so its ``${VAR:-default}`` expand from the
process's environment exactly as under a Procfile runner.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"


def procfile_commands(path: Path = PROCFILE) -> dict[str, str]:
    """``{name: command}`` from a Procfile's ``name: command`` lines (comments skipped)."""
    commands = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


def wait_for(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    process: subprocess.Popen | None = None,
    interval: float = 0.1,
) -> None:
    """Block until ``ready()``, polling every ``interval`` seconds. Raises RuntimeError
    naming ``what`` after ``timeout`` seconds, or as soon as ``process`` (the server that
    should become ready) exits."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not {what} after {timeout:.0f}s")
        time.sleep(interval)


def wait_for_port(
    port: int,
    *,
    timeout: float = 30,
    process: subprocess.Popen | None = None,
    host: str = "127.0.0.1",
):
    """Block until something accepts connections on ``host``:``port`` (``wait_for``)."""

    def accepts() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex((host, port)) == 0

    wait_for(accepts, what=f"port {port} opened", timeout=timeout, process=process)


def wait_for_http(url: str, *, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Block until ``url`` answers with any HTTP response, a 404 too (``wait_for``): a
    gunicorn's socket accepts connections as soon as its master binds it, before any worker
    has loaded the project, and a request in that gap can outlast its caller's timeout (the
    first orders of a chaos run on a loaded machine: "payments down?"). Each request is
    given 5 s."""

    def answers() -> bool:
        try:
            requests.get(url, timeout=5, allow_redirects=False)
        except requests.RequestException:
            return False
        return True

    wait_for(answers, what=f"{url} answered", timeout=timeout, process=process, interval=0.2)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Send ``signum`` to the process group ``process`` leads (it was started with
    ``start_new_session=True``); a group that is already gone is no error."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group ``process`` leads, then reap ``process``."""
    _signal_group(process, signal.SIGKILL)
    process.wait()


def terminate_group(process: subprocess.Popen, *, timeout: float = 20) -> None:
    """Stop the process group ``process`` leads: SIGTERM for a warm shutdown, up to
    ``timeout`` seconds for ``process`` to exit, then SIGKILL for the group. The SIGKILL
    comes even after a clean exit: a child that outlived its parent (a prefork pool process,
    say) would otherwise be left running. Returns once ``process`` is reaped; an exited
    ``process`` or an empty group is no error."""
    _signal_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    kill_group(process)


class Process:
    """One command in a new session, its output appended to ``log_path`` or, without one,
    copied line by line to this process's stdout behind ``key`` (``make run``)."""

    def __init__(self, *, key: str, command: str, env: dict, log_path: Path | None):
        self.key = key
        self.command = command
        self.env = env
        self.log_path = log_path
        self.popen: subprocess.Popen | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> "Process":
        argv = ["/bin/sh", "-c", f"exec {self.command}"]
        options = dict(env=self.env, cwd=ROOT, stderr=subprocess.STDOUT, start_new_session=True)
        if self.log_path is None:
            self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, **options)
            threading.Thread(target=self._copy_output, daemon=True).start()
            return self
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.popen = subprocess.Popen(argv, stdout=log, **options)
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

    def _copy_output(self) -> None:
        # Ends when every process of the group has closed the pipe (they all exited).
        prefix = f"{self.key:<9}| ".encode()
        for line in self.popen.stdout:
            sys.stdout.buffer.write(prefix + line)
            sys.stdout.buffer.flush()
