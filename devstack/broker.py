"""The stack's broker when it is RabbitMQ (``CELERY_BROKER_URL=amqp://…``): what the harness
reads and removes there, and the faults it injects (queues purged, connections closed). The
names are the product's (config/broker.py): a deployment's queues, their exchange and its
control and event exchanges all carry its ``DEPLOYMENT_NAMESPACE``, so these touch no other
deployment's; connections are picked by their client's address and port, never by name.
"""

import os
import shutil
import subprocess
from dataclasses import dataclass

from kombu import Connection, Queue

from config.broker import rabbitmq_exchanges, rabbitmq_queues

CONNECT_TIMEOUT = 5.0  # seconds
RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"  # Debian's, in sbin
RABBITMQCTL_TIMEOUT = 30.0  # seconds


@dataclass(frozen=True)
class Rabbitmqctl:
    """How to run ``rabbitmqctl`` against a node: ``argv`` (the command, behind ``ip netns
    exec`` for a simulated cluster's node: ``devstack.cluster``) with ``env`` (None: this
    process's, which finds the machine's node)."""

    argv: tuple[str, ...] = (RABBITMQCTL,)
    env: dict | None = None

    def __call__(self, *args: str) -> str:
        """Its output. Raises CalledProcessError when it fails (not root, node down),
        TimeoutExpired after RABBITMQCTL_TIMEOUT seconds."""
        return subprocess.run(
            [*self.argv, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=RABBITMQCTL_TIMEOUT,
        ).stdout


LOCAL_RABBITMQCTL = Rabbitmqctl()


def environment_broker_url() -> str | None:
    """The broker this process's environment names (``CELERY_BROKER_URL``), if any: every
    stack the harness starts uses it, else its Redis."""
    return os.environ.get("CELERY_BROKER_URL") or None


def rabbitmq_rows(
    command: str,
    *columns: str,
    vhost: str | None = None,
    rabbitmqctl: Rabbitmqctl = LOCAL_RABBITMQCTL,
) -> list[list[str]]:
    """The rows of ``rabbitmqctl <command> <columns>`` (``list_queues``, ...), each a list of
    the columns' values as text, of the ``vhost`` only when given; asked of ``rabbitmqctl``
    (by default this machine's node; a simulated cluster's: ``Cluster.rabbitmqctl``)."""
    scope = ("--vhost", vhost) if vhost is not None else ()
    listing = rabbitmqctl("--quiet", command, "--no-table-headers", *scope, *columns)
    return [line.split("\t") for line in listing.splitlines()]


def rabbitmq_queue_names(*, namespace: str, queues: tuple[str, ...]) -> tuple[str, ...]:
    """The names on RabbitMQ of the namespace's ``queues`` (plain names: ``notifications`` is
    ``<namespace>.notifications``; one the settings do not define, such as the benchmark's
    ``bench``, is the queue Celery creates under that very name)."""
    by_alias = {queue.alias: queue.name for queue in rabbitmq_queues(namespace=namespace)}
    return tuple(by_alias.get(alias, alias) for alias in queues)


def rabbitmq_backlog(
    *,
    url: str,
    namespace: str,
    queues: tuple[str, ...],
    rabbitmqctl: Rabbitmqctl = LOCAL_RABBITMQCTL,
) -> dict[str, int]:
    """``{"queued": messages waiting, "unacked": delivered, not yet acknowledged}`` in the
    namespace's ``queues`` (plain names, as ``rabbitmq_queue_names``). A queue not declared
    yet counts 0.

    Asked of ``rabbitmqctl`` (``rabbitmq_rows``), as AMQP shows a client the waiting
    messages only (a passive declare), not the unacknowledged ones a caller waiting for a
    queue to drain must count too. Raises CalledProcessError when rabbitmqctl fails (not
    root, no such virtual host)."""
    wanted = set(rabbitmq_queue_names(namespace=namespace, queues=queues))
    rows = rabbitmq_rows(
        "list_queues",
        "name",
        "messages_ready",
        "messages_unacknowledged",
        vhost=Connection(url).virtual_host,
        rabbitmqctl=rabbitmqctl,
    )
    backlog = {"queued": 0, "unacked": 0}
    for name, ready, unacked in rows:
        if name in wanted:
            backlog["queued"] += int(ready)
            backlog["unacked"] += int(unacked)
    return backlog


def rabbitmq_purge(*, url: str, namespace: str, queues: tuple[str, ...]) -> dict[str, int]:
    """Purge the namespace's ``queues`` (plain names, as ``rabbitmq_queue_names``): their
    waiting messages are gone; those delivered and not yet acknowledged stay with their
    consumer. Returns ``{plain name: messages purged}``, as RabbitMQ counts them (AMQP's
    ``queue.purge-ok``, which ``rabbitmqctl purge_queue`` does not print). Raises kombu's
    ChannelError for a queue not declared yet."""
    names = rabbitmq_queue_names(namespace=namespace, queues=queues)
    with Connection(url, connect_timeout=CONNECT_TIMEOUT) as connection:
        channel = connection.default_channel
        return {alias: channel.queue_purge(name) for alias, name in zip(queues, names, strict=True)}


def rabbitmq_connections(*, url: str, clients: set[tuple[str, int]]) -> dict[tuple, str]:
    """``{client: connection}`` for the connections to the URL's virtual host whose client
    end is one of ``clients`` (``(address, port)``: the local ends of a process's sockets);
    a connection is its Erlang process id, as ``rabbitmq_close`` and ``rabbitmq_unacked``
    take it. An address and port pair is one connection at a time, so no other program's
    connection is ever among them."""
    rows = rabbitmq_rows(
        "list_connections", "pid", "peer_host", "peer_port", vhost=Connection(url).virtual_host
    )
    found = {(host, int(port)): pid for pid, host, port in rows}
    return {client: found[client] for client in clients if client in found}


def rabbitmq_close(pids: list[str], *, reason: str) -> int:
    """Have RabbitMQ close the connections ``pids`` (``rabbitmq_connections``), all in one
    ``rabbitmqctl eval`` of what ``rabbitmqctl close_connection`` does for one (each call
    starts an Erlang node: about a second, several on a loaded machine). Returns how many
    it closed; one that had closed meanwhile is not counted."""
    if not pids:
        return 0
    listed = ",".join(f'"{pid}"' for pid in pids)
    code = (
        f"length([P || P <- [{listed}], (catch rabbit_networking:close_connection("
        f'rabbit_misc:string_to_pid(P), "{reason}")) =:= ok]).'
    )
    return int(LOCAL_RABBITMQCTL("--quiet", "eval", code))


def rabbitmq_unacked(pids: list[str]) -> int:
    """Messages delivered on the channels of the connections ``pids`` and not acknowledged
    yet: what RabbitMQ hands to another consumer once those connections close."""
    wanted = set(pids)
    rows = rabbitmq_rows("list_channels", "connection", "messages_unacknowledged")
    return sum(int(unacked) for connection, unacked in rows if connection in wanted)


def rabbitmq_delete(*, url: str, namespace: str) -> None:
    """Delete the namespace's queues (with their messages) and exchanges, if they exist: a
    run on the machine's RabbitMQ starts with nothing left by an earlier one, and leaves
    nothing (quorum queues are durable: they would outlive it)."""
    names = rabbitmq_exchanges(namespace=namespace)
    exchanges = (
        names["tasks"],
        names["events"],
        f"{names['control']}.pidbox",
        f"reply.{names['control']}.pidbox",
    )
    with Connection(url, connect_timeout=CONNECT_TIMEOUT) as connection:
        channel = connection.default_channel
        for queue in rabbitmq_queues(namespace=namespace):
            channel.queue_delete(queue.name)
        for exchange in exchanges:
            channel.exchange_delete(exchange)


def rabbitmq_delete_notify(*, url: str, namespace: str, names: tuple[str, ...]) -> None:
    """Delete the namespace's queue-target queues (notifications/queues.py, under the
    ``<namespace>.`` prefix the product gives them on RabbitMQ): each of ``names``' queue and
    its dead letters, the acknowledgements' queue, and their exchange; durable, they would
    outlive the run."""
    prefix = f"{namespace}.notify"
    queues = [f"{prefix}.acks"]
    for name in names:
        queues += [f"{prefix}.{name}", f"{prefix}.{name}.dead"]
    with Connection(url, connect_timeout=CONNECT_TIMEOUT) as connection:
        channel = connection.default_channel
        for queue in queues:
            channel.queue_delete(queue)
        channel.exchange_delete(prefix)


def rabbitmq_probe_publish(*, url: str, queue: str, count: int) -> None:
    """Declare the quorum queue ``queue`` (durable, nobody consumes it) and publish ``count``
    persistent messages to it, each confirmed by RabbitMQ before the next: a record of what
    the broker promised to keep, to count after it restarts (``rabbitmq_probe_take``)."""
    probe = Queue(
        queue, routing_key=queue, durable=True, queue_arguments={"x-queue-type": "quorum"}
    )
    options = {"confirm_publish": True}
    with Connection(url, connect_timeout=CONNECT_TIMEOUT, transport_options=options) as connection:
        producer = connection.Producer()
        for number in range(count):
            producer.publish({"probe": number}, routing_key=queue, declare=[probe], delivery_mode=2)


def rabbitmq_probe_take(*, url: str, queue: str) -> int:
    """The messages waiting in ``queue`` (a passive declare), then delete it. Raises
    kombu's ChannelError (404) when the queue does not exist."""
    with Connection(url, connect_timeout=CONNECT_TIMEOUT) as connection:
        channel = connection.default_channel
        waiting = channel.queue_declare(queue=queue, passive=True).message_count
        channel.queue_delete(queue)
    return waiting


def rabbitmq_reachable(url: str) -> bool:
    """True when a RabbitMQ at ``url`` lets us in within a second (a node still booting
    refuses the connection)."""
    connection = Connection(url, connect_timeout=1)
    try:
        connection.connect()
        return True
    except connection.connection_errors:
        return False
    finally:
        connection.release()
