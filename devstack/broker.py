"""The stack's broker when it is RabbitMQ (``CELERY_BROKER_URL=amqp://…``): what the harness
reads and removes there. The names are the product's (config/broker.py): a
deployment's queues, their exchange and its control and event exchanges all carry its
``DEPLOYMENT_NAMESPACE``, so these touch no other deployment's.
"""

import os
import shutil
import subprocess

from kombu import Connection

from config.broker import rabbitmq_exchanges, rabbitmq_queues

CONNECT_TIMEOUT = 5.0  # seconds
RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"  # Debian's, in sbin
RABBITMQCTL_TIMEOUT = 30.0  # seconds


def environment_broker_url() -> str | None:
    """The broker this process's environment names (``CELERY_BROKER_URL``), if any: every
    stack the harness starts uses it, else its Redis."""
    return os.environ.get("CELERY_BROKER_URL") or None


def rabbitmq_backlog(*, url: str, namespace: str, queues: tuple[str, ...]) -> dict[str, int]:
    """``{"queued": messages waiting, "unacked": delivered, not yet acknowledged}`` in the
    namespace's ``queues`` (plain names: ``notifications``; one the settings do not define,
    such as the benchmark's ``bench``, is the queue Celery creates under that very name). A
    queue not declared yet counts 0.

    Asked of ``rabbitmqctl`` on this machine (the harness's RabbitMQ is local), as AMQP
    shows a client the waiting messages only (a passive declare), not the unacknowledged
    ones a caller waiting for a queue to drain must count too. Raises CalledProcessError
    when rabbitmqctl fails (not root, no such virtual host)."""
    by_alias = {queue.alias: queue.name for queue in rabbitmq_queues(namespace=namespace)}
    wanted = {by_alias.get(alias, alias) for alias in queues}
    listing = subprocess.run(
        [
            RABBITMQCTL,
            "list_queues",
            "--quiet",
            "--no-table-headers",
            "--vhost",
            Connection(url).virtual_host,
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=RABBITMQCTL_TIMEOUT,
    ).stdout
    backlog = {"queued": 0, "unacked": 0}
    for line in listing.splitlines():
        name, ready, unacked = line.rsplit("\t", 2)
        if name in wanted:
            backlog["queued"] += int(ready)
            backlog["unacked"] += int(unacked)
    return backlog


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
