"""Where the CPU goes: seconds of CPU (user + system) each part of the stack spent during a
step, so a rate can be explained per item ("ms of worker CPU per notification").

The parts are the benchmark stack's processes, each with its descendants: ``web`` and
``payments`` (the Procfile's gunicorns), ``receiver`` (the minimal WSGI app), ``echo`` (the
slow receivers, ``bench.echo``), ``worker``
(Celery, every pool process), ``redis`` (the private Redis), ``driver`` (this process: the
load generator, and the fault proxy when one runs in it) and ``postgres`` (the server
processes of the sessions on the benchmark's own database, so another database's work on a
shared server is not counted, nor are the server's shared processes: WAL writer,
checkpointer). A process that ends during the step loses what it spent since the first
snapshot; persistent database connections keep that small.
"""

import contextlib
import os

import psutil

PARTS = ("driver", "web", "payments", "receiver", "echo", "worker", "postgres", "redis")


def _cpu(process: psutil.Process) -> float | None:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system + times.children_user + times.children_system


def stack_processes(stack) -> dict[str, list[psutil.Process]]:
    """``{part: [process]}`` for a started benchmark stack (see PARTS)."""
    parts: dict[str, list[psutil.Process]] = {part: [] for part in PARTS}
    parts["driver"].append(psutil.Process(os.getpid()))
    for part in ("web", "payments", "receiver", "echo", "worker"):
        parts[part] = stack.process_tree(part)
    if stack.redis_process is not None:
        parts["redis"].append(psutil.Process(stack.redis_process.pid))
    if getattr(stack, "env", {}).get("DATABASE_URL", "").startswith("postgres"):
        parts["postgres"] = database_backends()
    return parts


def database_backends() -> list[psutil.Process]:
    """The PostgreSQL server processes of every session on this process's database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [pid for (pid,) in cursor.fetchall()]
    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            processes.append(psutil.Process(pid))
    return processes


class CpuMeter:
    """``with CpuMeter(stack) as meter: ...`` then ``meter.seconds`` is ``{part: CPU s}``."""

    def __init__(self, stack):
        self.stack = stack
        self.seconds: dict[str, float] = {}

    def _snapshot(self) -> dict[str, dict[int, float]]:
        snapshot = {}
        for part, processes in stack_processes(self.stack).items():
            times = {process.pid: _cpu(process) for process in processes}
            snapshot[part] = {pid: spent for pid, spent in times.items() if spent is not None}
        return snapshot

    def __enter__(self) -> "CpuMeter":
        self._start = self._snapshot()
        return self

    def __exit__(self, *exc_info) -> None:
        end = self._snapshot()
        for part, times in end.items():
            before = self._start.get(part, {})
            # A process that appeared during the step (a new connection's backend, a
            # restarted pool child) started from zero.
            self.seconds[part] = round(
                sum(spent - before.get(pid, 0.0) for pid, spent in times.items()), 3
            )

    def per_item(self, n: int) -> dict[str, float]:
        """Milliseconds of CPU per item for each part, and ``total``."""
        per = {part: round(spent * 1000 / n, 2) for part, spent in self.seconds.items()}
        per["total"] = round(sum(self.seconds.values()) * 1000 / n, 2)
        return per
