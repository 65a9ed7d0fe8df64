"""``python -m devstack run|test|demo``: what the Makefile's targets call."""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from .redis import ensure_redis
from .stack import ROOT, VAR, Stack

TEST_REDIS_DB = 15


def _exit_on_sigterm() -> None:
    """Turn SIGTERM (``timeout``, a supervisor) into SystemExit so ``finally`` stops the
    stack: its processes run in sessions of their own and would otherwise outlive us."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def run(args) -> int:
    """Foreground stack on PORT (default 8000) with this shell's environment; runs until
    Ctrl-C or until a process exits (its status is returned), and stops all of it, Redis
    included."""
    _exit_on_sigterm()
    web_port = int(os.environ.get("PORT", 8000))
    redis_url, redis_process = ensure_redis(var_dir=VAR)
    public = {
        k: os.environ[k] for k in ("PAYMENTS_PUBLIC_URL", "ACCOUNTS_PUBLIC_URL") if k in os.environ
    }
    stack = Stack(
        settings=public,
        redis_url=redis_url,
        inherit=True,
        web_port=web_port,
        payments_port=int(os.environ.get("PAYMENTS_PORT", web_port + 1)),
    )
    print(f"Starting on {stack.web_url}  (demo/demo, admin/admin at {stack.web_url}/admin/)")
    try:
        stack.prepare()
        stack.start("web", "payments")
        # Not waited for: a ping needs the namespace, which the product derives unless set.
        stack.launch("worker")
        stack.launch("beat")
        # The Procfile's subscriber only where accounts takes its notifications from the queue.
        if stack.env.get("ACCOUNTS_NOTIFY_TRANSPORT") == "queue":
            stack.launch("subscriber")
        return stack.wait_for_exit()
    except KeyboardInterrupt:
        return 0
    finally:
        stack.close()
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)


def test(args) -> int:
    """pytest with a Redis ensured (found or started) for the whole session."""
    redis_url, process = ensure_redis(var_dir=VAR, db=TEST_REDIS_DB)
    # The test process's own Prometheus counters, empty at the start (config/settings/metrics.py).
    metrics_dir = tempfile.mkdtemp(prefix="recharge-test-metrics-")
    env = {**os.environ, "REDIS_URL": redis_url, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    try:
        return subprocess.call(
            [sys.executable, "-m", "pytest", *args.pytest_args], env=env, cwd=ROOT
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if process:
            process.terminate()
            process.wait(timeout=10)


def demo(args) -> int:
    from .demo import main

    return main()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run").set_defaults(func=run)
    test_parser = commands.add_parser("test")
    test_parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test_parser.set_defaults(func=test)
    commands.add_parser("demo").set_defaults(func=demo)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
