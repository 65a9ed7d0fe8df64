"""The whole stack as one object: Redis (the cache, and the broker unless the environment's
``CELERY_BROKER_URL`` names RabbitMQ), then any of the Procfile's processes (web and payments
gunicorn, Celery worker, beat) by key, each in a process group of its own so that one can be
SIGKILLed, restarted or run twice (a second beat) while the others go on. ``make run``,
``make demo``, ``make chaos``, ``make bench`` and the end-to-end tests all run this class.

Every process gets the same environment: the settings the caller names, the ports and URLs
the stack chose, and otherwise only the basics of this process's environment (``HOME``,
``LANG``, ...), so a variable left in the operator's shell cannot change a harness run;
``make run`` alone inherits the whole environment (``inherit=True``), as a developer expects.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import redis
from celery import Celery
from kombu import Connection

from config.broker import broker_is_redis, rabbitmq_exchanges, rabbitmq_queues

from .broker import (
    LOCAL_RABBITMQCTL,
    environment_broker_url,
    rabbitmq_backlog,
    rabbitmq_close,
    rabbitmq_connections,
    rabbitmq_delete,
    rabbitmq_delete_notify,
    rabbitmq_purge,
    rabbitmq_queue_names,
    rabbitmq_unacked,
)
from .processes import ROOT, Process, procfile_commands, wait_for_http, wait_for_port
from .redis import free_port, start_redis

VAR = ROOT / "var"
BIN = Path(sys.executable).parent
INHERITED = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "LOGNAME", "SHELL", "TERM", "TMPDIR", "TZ")
READY_TIMEOUT = 90.0  # seconds a process has to accept connections or answer a ping
DJANGO_SERVERS = ("web", "payments")  # the Procfile's gunicorns: ready once one answers HTTP
REPLY_TIMEOUT = 3.0  # seconds the workers have to answer a remote-control command


def stack_environment(settings: dict, *, inherit: bool = False) -> dict[str, str]:
    """The environment of a stack process: this process's basics (all of it with
    ``inherit``), PATH with the virtualenv first, unbuffered output, then ``settings``."""
    if inherit:
        env = dict(os.environ)
    else:
        env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env["PATH"] = f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update({name: str(value) for name, value in settings.items()})
    return env


def manage(env: dict, *args: str, log_path: Path | None = None) -> None:
    """``python manage.py <args>`` with ``env``; its output appended to ``log_path`` (else
    this process's). Raises CalledProcessError when it fails."""
    command = [sys.executable, str(ROOT / "manage.py"), *args]
    if log_path is None:
        subprocess.run(command, env=env, cwd=ROOT, check=True)
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)


def django_setup(env: dict) -> None:
    """Point this process's Django at what ``env`` (a stack's environment, or settings for
    one) names: its settings module, database, Redis and namespace. Once per process."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _sockets(process: psutil.Process) -> list:
    """``process``'s TCP sockets (psutil's ``net_connections``); none once it has exited."""
    try:
        return process.net_connections(kind="tcp")
    except psutil.Error:
        return []


class Stack:
    """Redis and the Procfile's processes; see the module docstring.

    ``settings``: environment variables naming settings, for every process. ``log_dir``: one
    ``<key>.log`` per process there; None copies their output to stdout. ``redis_url``: an
    existing Redis; None runs a private packaged redis-server on a port of the stack's own
    (``start_redis``). The broker is that Redis unless this process's environment (or
    ``settings``) names one in ``CELERY_BROKER_URL``: RabbitMQ, say, shared by every stack
    that names it and kept apart by their namespaces. ``servers``: ``{name: command}`` run
    besides the Procfile's, each given a free port in ``${NAME_PORT}``.
    ``web_port``/``payments_port`` 0 pick free ports.
    Use as a context manager; ``close()`` stops everything it started.
    """

    def __init__(
        self,
        *,
        settings: dict | None = None,
        log_dir: Path | None = None,
        redis_url: str | None = None,
        servers: dict | None = None,
        inherit: bool = False,
        web_port: int = 0,
        payments_port: int = 0,
    ):
        self.log_dir = log_dir
        self.commands = {**procfile_commands(), **(servers or {})}
        # Every server listens on ${NAME_PORT}: the Procfile's two, and any of ``servers``.
        self.ports = {
            "web": web_port or free_port(),
            "payments": payments_port or free_port(),
            **{name: free_port() for name in servers or {}},
        }
        self.redis_port = None if redis_url else free_port()
        self.redis_url = redis_url or f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis_process: subprocess.Popen | None = None
        self.processes: dict[str, Process] = {}
        self._control: Celery | None = None
        computed = {f"{name.upper()}_PORT": port for name, port in self.ports.items()}
        self.broker_url = (
            (settings or {}).get("CELERY_BROKER_URL") or environment_broker_url() or self.redis_url
        )
        computed.update(
            REDIS_URL=self.redis_url,
            CELERY_BROKER_URL=self.broker_url,
            ACCOUNTS_PAYMENTS_API_URL=self.payments_url,
            PAYMENTS_PUBLIC_URL=self.web_url,
            ACCOUNTS_PUBLIC_URL=self.web_url,
            # Where the processes pool their Prometheus counters (config/settings/metrics.py).
            PROMETHEUS_MULTIPROC_DIR=(log_dir or VAR) / "prometheus",
        )
        self.env = stack_environment({**computed, **(settings or {})}, inherit=inherit)
        self._metrics_emptied = False

    address = "127.0.0.1"  # where the servers listen (a cluster's web host: devstack.cluster)
    rabbitmqctl = LOCAL_RABBITMQCTL  # how to ask the RabbitMQ node (a cluster's: its own)

    def url(self, server: str) -> str:
        return f"http://{self.address}:{self.ports[server]}"

    @property
    def web_url(self) -> str:
        return self.url("web")

    @property
    def payments_url(self) -> str:
        return self.url("payments")

    @property
    def namespace(self) -> str:
        """The stack's DEPLOYMENT_NAMESPACE, which prefixes every Redis key Celery writes
        (config/settings/redis.py), or every RabbitMQ queue and exchange (config/broker.py).
        Raises RuntimeError when the caller left it to the product's default, which only the
        product computes."""
        try:
            return self.env["DEPLOYMENT_NAMESPACE"]
        except KeyError:
            raise RuntimeError("name the stack's DEPLOYMENT_NAMESPACE in its settings") from None

    # --- Redis -----------------------------------------------------------------------------

    def start_redis(self) -> None:
        """Start the private redis-server, empty (no persistence), on the stack's port."""
        if self.redis_port is None:
            raise RuntimeError("this stack uses an existing Redis")
        _, self.redis_process = start_redis(var_dir=self.log_dir or VAR, port=self.redis_port)

    def stop_redis(self) -> None:
        """Stop the private Redis the hard way (SIGKILL): whatever it held is gone."""
        if self.redis_process is not None and self.redis_process.poll() is None:
            self.redis_process.kill()
            self.redis_process.wait(timeout=10)

    def redis(self) -> redis.Redis:
        """A new client of the stack's Redis (the caller closes it)."""
        return redis.Redis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=5)

    def broker_key(self, name: str) -> str:
        """The Redis key kombu uses for ``name`` (a queue, ``unacked``) in this namespace."""
        return f"{self.namespace}:{name}"

    @property
    def broker_is_redis(self) -> bool:
        return broker_is_redis(self.broker_url)

    def broker_backlog(self, *queues: str) -> dict[str, int]:
        """``{"queued": messages waiting in queues, "unacked": delivered to a worker, not yet
        acknowledged}`` (with ``task_acks_late``: not yet run to the end); on RabbitMQ from
        its ``rabbitmqctl`` (``devstack.broker.rabbitmq_backlog``)."""
        if not self.broker_is_redis:
            return rabbitmq_backlog(
                url=self.broker_url,
                namespace=self.namespace,
                queues=queues,
                rabbitmqctl=self.rabbitmqctl,
            )
        with self.redis() as client:
            pipe = client.pipeline()
            for queue in queues:
                pipe.llen(self.broker_key(queue))
            pipe.hlen(self.broker_key("unacked"))
            *lengths, unacked = pipe.execute()
        return {"queued": sum(lengths), "unacked": unacked}

    def flushall(self) -> dict[str, int]:
        """FLUSHALL; returns the broker backlog it destroyed (see ``broker_backlog``). Redis
        as the broker only (RuntimeError otherwise): on RabbitMQ it would empty the cache
        alone."""
        if not self.broker_is_redis:
            raise RuntimeError("FLUSHALL empties the broker only when Redis is the broker")
        lost = self.broker_backlog("notifications", "periodic")
        with self.redis() as client:
            client.flushall()
        return lost

    # --- RabbitMQ as the broker --------------------------------------------------------------

    def _require_rabbitmq(self) -> None:
        """Raises RuntimeError unless the broker is RabbitMQ."""
        if self.broker_is_redis:
            raise RuntimeError("the broker is Redis, not RabbitMQ")

    def purge(self, *queues: str) -> dict[str, int]:
        """Purge the namespace's ``queues`` (plain names) on RabbitMQ: ``{queue: messages
        purged}`` (``devstack.broker.rabbitmq_purge``). RuntimeError on Redis."""
        self._require_rabbitmq()
        return rabbitmq_purge(url=self.broker_url, namespace=self.namespace, queues=queues)

    def broker_connections(self, *keys: str) -> dict[str, list[str]]:
        """``{key: its RabbitMQ connections}`` (``devstack.broker.rabbitmq_connections``) of
        the processes ``keys`` and their descendants (a gunicorn's workers, a prefork pool):
        those whose client end is the local end of one of their sockets to the broker's port.
        RuntimeError on Redis."""
        self._require_rabbitmq()
        port = Connection(self.broker_url).port
        clients = {
            key: {
                (sock.laddr.ip, sock.laddr.port)
                for process in self.process_tree(key)
                for sock in _sockets(process)
                if sock.raddr and sock.raddr.port == port
            }
            for key in keys
        }
        found = rabbitmq_connections(url=self.broker_url, clients=set().union(*clients.values()))
        return {key: [found[c] for c in mine if c in found] for key, mine in clients.items()}

    def close_broker_connections(self, *keys: str) -> dict[str, int]:
        """Have RabbitMQ close every connection of the processes ``keys`` (see
        ``broker_connections``): ``{key: connections closed}``. RuntimeError on Redis."""
        connections = self.broker_connections(*keys)
        reason = f"chaos: {self.namespace}"
        return {key: rabbitmq_close(pids, reason=reason) for key, pids in connections.items()}

    def broker_unacked(self, key: str) -> int:
        """Messages RabbitMQ delivered to the processes ``key`` and that they have not
        acknowledged yet (``devstack.broker.rabbitmq_unacked``). RuntimeError on Redis."""
        return rabbitmq_unacked(self.broker_connections(key)[key])

    def consume(self, *queues: str, on: bool) -> int:
        """Have the namespace's workers stop (``on=False``) or start again consuming from
        the RabbitMQ ``queues`` (plain names), by Celery's remote control
        (``cancel_consumer``, ``add_consumer``); what they hold stays theirs. (A worker
        that reconnects later forgets a queue added back this way: Celery rebuilds its
        consumer from the queues it selected, which ``cancel_consumer`` removed.) Returns
        how many workers replied; RuntimeError when none did, or on Redis."""
        self._require_rabbitmq()
        names = rabbitmq_queue_names(namespace=self.namespace, queues=queues)
        control = self.control().control
        command = control.add_consumer if on else control.cancel_consumer
        replies = [command(name, reply=True, timeout=REPLY_TIMEOUT) for name in names]
        replied = {worker for answers in replies for answer in answers for worker in answer}
        if not replied:
            raise RuntimeError(f"no worker replied to {command.__name__} {names}")
        return len(replied)

    # --- Processes -------------------------------------------------------------------------

    def launch(self, name: str, *, key: str = "", args: str = "", env: dict | None = None):
        """Start the Procfile process ``name`` (``args`` appended to its line, ``env`` added
        to its environment) as ``key`` (default: the name), stopping whatever ran as
        ``key`` first. Returns the Process without waiting for it."""
        key = key or name
        if key in self.processes:
            self.stop(key)
        if not self._metrics_emptied:
            self._empty_metrics()
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        process = Process(
            key=key,
            command=f"{self.command(name, key)} {args}".strip(),
            env={**self.env, **{k: str(v) for k, v in (env or {}).items()}},
            log_path=self.log_dir / f"{key}.log" if self.log_dir is not None else None,
        )
        self.processes[key] = process.start()
        return process

    def command(self, name: str, key: str) -> str:
        """The command line of the Procfile process ``name`` started as ``key``: the
        Procfile's (a cluster runs it on a host of its own: ``devstack.cluster``)."""
        return self.commands[name]

    def _empty_metrics(self) -> None:
        """Empty PROMETHEUS_MULTIPROC_DIR before the stack's first process starts, as
        prometheus_client requires (a previous run's counters would be summed in)."""
        directory = Path(self.env["PROMETHEUS_MULTIPROC_DIR"])
        directory.mkdir(parents=True, exist_ok=True)
        for path in directory.glob("*.db"):
            path.unlink()
        self._metrics_emptied = True

    def wait_ready(
        self, name: str, *, key: str = "", timeout: float = READY_TIMEOUT, node: str = ""
    ) -> None:
        """Until a server accepts connections on its port (a Django one, ``DJANGO_SERVERS``:
        and answers HTTP), or a worker answers a ping: any
        worker of the namespace, or with ``node`` the one started with ``-n <node>@%h``
        (while another runs). Raises RuntimeError when the process exits first or after
        ``timeout`` seconds."""
        process = self.processes[key or name]
        if name in self.ports:
            port, started = self.ports[name], time.monotonic()
            wait_for_port(port, timeout=timeout, process=process.popen, host=self.address)
            if name in DJANGO_SERVERS:  # and one of its workers has the project loaded
                left = timeout - (time.monotonic() - started)
                wait_for_http(f"http://{self.address}:{port}/", timeout=left, process=process.popen)
        elif name == "worker":
            self._wait_for_worker(process, timeout, node)

    def start(self, *names: str, args: str = "", env: dict | None = None) -> None:
        """Launch the Procfile processes ``names`` together, then wait until each is ready."""
        for name in names:
            self.launch(name, args=args, env=env)
        for name in names:
            self.wait_ready(name)

    def kill(self, key: str) -> None:
        """SIGKILL the process ``key`` with its whole group; it is no longer the stack's."""
        self.processes.pop(key).kill()

    def stop(self, key: str) -> None:
        """Warm shutdown of the process ``key`` (then SIGKILL), if it runs; no longer the
        stack's."""
        process = self.processes.pop(key, None)
        if process is not None:
            process.stop()

    def alive(self, key: str) -> bool:
        return key in self.processes and self.processes[key].alive

    def exited(self) -> dict[str, int]:
        """``{key: exit status}`` of the stack's processes that exited on their own."""
        return {
            key: process.popen.returncode
            for key, process in self.processes.items()
            if not process.alive
        }

    def wait_for_exit(self) -> int:
        """Block until a process exits on its own and return its exit status: ``make run``
        serves in the foreground until then (or Ctrl-C), as a Procfile runner does."""
        while not self.exited():
            time.sleep(0.5)
        return next(iter(self.exited().values()))

    def pid(self, key: str) -> int | None:
        """The main process id of ``key`` (None when it is not running)."""
        process = self.processes.get(key)
        return process.popen.pid if process is not None and process.alive else None

    def process_tree(self, key: str) -> list[psutil.Process]:
        """The processes of ``key`` (its main process and every descendant: a gunicorn's
        workers, a prefork pool); empty when it is not running."""
        pid = self.pid(key)
        if pid is None:
            return []
        try:
            main = psutil.Process(pid)
            return [main, *main.children(recursive=True)]
        except psutil.Error:
            return []

    def manage(self, *args: str) -> None:
        """``python manage.py <args>`` with the stack's environment, its output in
        ``manage.log`` (or this process's). Raises CalledProcessError when it fails."""
        manage(self.env, *args, log_path=self.log_dir / "manage.log" if self.log_dir else None)

    def prepare(self, *, users: int = 0) -> None:
        """Migrate the stack's database and seed the development merchant and users
        (``seed_demo``, DEBUG on: demo/demo, admin/admin and ``users`` more)."""
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("seed_demo", "--users", str(users))

    # --- Celery ----------------------------------------------------------------------------

    def control(self) -> Celery:
        """A bare Celery client of the stack's broker and namespace: pings, sent messages."""
        if self._control is None:
            self._control = Celery("devstack", broker=self.broker_url, set_as_current=False)
            self._control.conf.update(
                # Celery prefers this process's CELERY_BROKER_URL to ``broker=``: a stack told
                # to use another broker than the environment's would ping the wrong one.
                broker_read_url=self.broker_url,
                broker_write_url=self.broker_url,
                task_serializer="json",
                accept_content=["json"],
                broker_connection_retry_on_startup=True,
                **self._namespaced(),
            )
        return self._control

    def _namespaced(self) -> dict:
        """The Celery settings that put a client in the stack's namespace, as the product's
        (config/settings/celery.py)."""
        if self.broker_is_redis:
            return {"broker_transport_options": {"global_keyprefix": f"{self.namespace}:"}}
        exchanges = rabbitmq_exchanges(namespace=self.namespace)
        return {
            "task_queues": rabbitmq_queues(namespace=self.namespace),
            "control_exchange": exchanges["control"],
            "event_exchange": exchanges["events"],
        }

    def broker_delete(self) -> None:
        """On RabbitMQ, delete the namespace's queues (their messages with them) and
        exchanges (``devstack.broker.rabbitmq_delete``), the queue targets' too (accounts'
        subscriber queue, ``rabbitmq_delete_notify``); on Redis nothing (the harness flushes
        its Redis instead)."""
        if not self.broker_is_redis:
            rabbitmq_delete(url=self.broker_url, namespace=self.namespace)
            names = (self.env.get("ACCOUNTS_NOTIFY_QUEUE", "accounts"),)
            rabbitmq_delete_notify(url=self.broker_url, namespace=self.namespace, names=names)

    def send_deliver(self, notification_id) -> None:
        """Publish one ``notifications.deliver`` message by hand, as a duplicate would be."""
        self.control().send_task(
            "notifications.deliver", args=[str(notification_id)], queue="notifications"
        )

    def _wait_for_worker(self, process: Process, timeout: float, node: str) -> None:
        deadline = time.monotonic() + timeout
        while not self._pinged(node):
            if not process.alive:
                raise RuntimeError(f"{process.key} exited during startup (see {self.log_dir})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no worker answered a ping within {timeout:.0f}s")

    def _pinged(self, node: str = "") -> bool:
        """Whether a worker of the namespace (the one named ``<node>@<this host>``, when
        given) answered a ping within half a second."""
        control = self.control()
        connection = control.connection_for_write()
        destination = [f"{node}@{socket.gethostname()}"] if node else None
        try:
            return bool(control.control.ping(timeout=0.5, destination=destination))
        except connection.channel_errors:
            # RabbitMQ refuses a publish to an exchange nobody declared: the control
            # exchange exists once the first worker has started consuming from it.
            return False
        except connection.connection_errors:
            # kombu pools producers per broker URL for the whole process, so this client
            # may be handed a connection an earlier stack opened to a broker restarted
            # since (the simulated cluster's RabbitMQ node, chaos 14): the failed write
            # marks it closed and the next ping connects again.
            return False

    # --- The whole -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process (warm shutdown, then SIGKILL), then the private Redis."""
        for key in reversed(list(self.processes)):
            self.stop(key)
        if self._control is not None:
            self._control.close()
        self.stop_redis()

    def open(self) -> "Stack":
        """Start what the stack owns besides its processes: the private Redis, if any."""
        if self.redis_port is not None:
            self.start_redis()
        return self

    def __enter__(self) -> "Stack":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
