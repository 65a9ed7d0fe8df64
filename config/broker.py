"""What the Celery settings (config/settings/celery.py) need to know about the broker: which
kind it is, and on RabbitMQ the names that keep this deployment's queues and exchanges apart
from any other's.

Pure functions of their arguments, outside the settings package (importing that reads the
environment and fixes the settings), so the harness (devstack) computes the same names as
the processes it starts without loading any settings.
"""

from kombu import Exchange, Queue

# The queues the tasks are routed to (CELERY_TASK_ROUTES, the Procfile's ``--queues``, the
# beat entries' ``queue``), by the name every one of those uses.
QUEUE_NAMES = ("default", "notifications", "periodic")
REDIS_SCHEMES = ("redis", "rediss", "redis+socket")


def broker_is_redis(url: str) -> bool:
    """Whether the broker URL names Redis (else RabbitMQ: ``amqp://``, ``amqps://``,
    ``pyamqp://``)."""
    return url.split("://", 1)[0].lower() in REDIS_SCHEMES


def rabbitmq_queues(*, namespace: str) -> tuple[Queue, ...]:
    """This deployment's queues on RabbitMQ: ``<namespace>.<name>`` (e.g.
    ``pay-prod.notifications``), each reachable by its plain name (the kombu ``alias``), so
    routes, ``--queues`` and beat entries stay as they are. Each is bound to the namespace's
    own direct exchange with its full name as routing key, so no other deployment's message
    can reach it.

    Quorum queues: durable and replicated over a RabbitMQ cluster's nodes, so a node lost
    loses no wake-up. Celery ≥ 5.5 detects them (``worker_detect_quorum_queues``) and turns
    off the global QoS they refuse. The queues stay on a direct exchange: Celery's native
    delayed delivery (for ETA tasks, which this project never sends) needs topic exchanges
    and logs a warning for each queue at worker start.
    """
    exchange = Exchange(f"{namespace}.tasks", type="direct", durable=True)
    return tuple(
        Queue(
            f"{namespace}.{name}",
            exchange,
            routing_key=f"{namespace}.{name}",
            alias=name,
            durable=True,
            queue_arguments={"x-queue-type": "quorum"},
        )
        for name in QUEUE_NAMES
    )


def rabbitmq_exchanges(*, namespace: str) -> dict[str, str]:
    """The names of this deployment's exchanges on RabbitMQ: ``tasks`` (its queues'),
    ``control`` (Celery's ``control_exchange``: pings, mingle, remote control, as
    ``<name>.pidbox``) and ``events`` (``event_exchange``: worker heartbeats and gossip).
    Without the last two a worker would answer another deployment's pings and sync its
    revoked tasks at start."""
    return {
        "tasks": f"{namespace}.tasks",
        "control": namespace,
        "events": f"{namespace}.celeryev",
    }
