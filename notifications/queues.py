"""Queue targets (the seeds' scheme 1): a notification whose target is ``queue://<name>`` is
published on the broker for a subscriber to consume, instead of POSTed over HTTP.

Pure names and declarations; ``notifications.publisher`` publishes and reads the
acknowledgements, ``notifications.subscriber`` consumes. Every name starts with
``NOTIFY_QUEUE_PREFIX``: on RabbitMQ the deployment's namespace (``pay-prod.``), which has no
key prefix of its own; on Redis empty, kombu's ``global_keyprefix`` namespacing every key.

- ``<prefix>notify.<name>``: the notifications for subscriber ``name``; on RabbitMQ a durable
  quorum queue whose rejected messages are dead-lettered to ``<prefix>notify.<name>.dead``
  (kept, at most ``DEAD_LETTERS_KEPT``, oldest dropped first, for inspection; the notifier's
  schedule publishes again anyway). Redis has no dead-lettering: a rejected message is gone.
- ``<prefix>notify.acks``: the subscribers' acknowledgements, read by the notifier.
"""

import re

from kombu import Exchange, Queue

from .conf import notify_settings

SCHEME = "queue://"
NAME = re.compile(r"^[a-z0-9-]{1,40}$")
DEAD_LETTERS_KEPT = 10_000


def queue_name(url: str) -> str | None:
    """The subscriber name of a ``queue://<name>`` target (``[a-z0-9-]{1,40}``), or None for
    any other URL (an http(s) one, or a malformed queue target)."""
    if not url.startswith(SCHEME):
        return None
    name = url[len(SCHEME) :]
    return name if NAME.match(name) else None


def is_queue_target(url: str) -> bool:
    """Whether ``url`` is a well-formed ``queue://<name>`` target."""
    return queue_name(url) is not None


def _prefixed(name: str) -> str:
    return f"{notify_settings.QUEUE_PREFIX}{name}"


def exchange() -> Exchange:
    """The direct exchange every notification, dead letter and acknowledgement goes through."""
    return Exchange(_prefixed("notify"), type="direct", durable=True)


def _quorum(name: str, **arguments) -> Queue:
    return Queue(
        name,
        exchange(),
        routing_key=name,
        durable=True,
        queue_arguments={"x-queue-type": "quorum", **arguments},
    )


def notify_queue(name: str) -> Queue:
    """Subscriber ``name``'s queue (see the module docstring)."""
    full = _prefixed(f"notify.{name}")
    return _quorum(
        full,
        **{"x-dead-letter-exchange": exchange().name, "x-dead-letter-routing-key": f"{full}.dead"},
    )


def dead_queue(name: str) -> Queue:
    """Where subscriber ``name``'s refused messages go on RabbitMQ (bounded, oldest out)."""
    return _quorum(
        _prefixed(f"notify.{name}.dead"),
        **{"x-max-length": DEAD_LETTERS_KEPT, "x-overflow": "drop-head"},
    )


def acks_queue() -> Queue:
    """The acknowledgements' queue."""
    return _quorum(_prefixed("notify.acks"))
