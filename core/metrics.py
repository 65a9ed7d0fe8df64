"""``/metrics`` for Prometheus: the counters every process of this host wrote (multiprocess
mode, config/settings/metrics.py) plus the gauges the collectors named in
``METRICS_COLLECTORS`` compute at scrape time; and the broker's queue lengths, one of them."""

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import redis
from django.conf import settings
from django.utils.module_loading import import_string
from kombu import Connection
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

from config.broker import rabbitmq_queues

logger = logging.getLogger(__name__)
T = TypeVar("T")


def host_registry() -> CollectorRegistry:
    """A registry of the counters and histograms every process of this host wrote, summed
    (what a Celery worker serves on ``WORKER_METRICS_PORT``)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_registry() -> CollectorRegistry:
    """A registry for one scrape of ``/metrics``: ``host_registry`` and the gauges of the
    ``METRICS_COLLECTORS``."""
    registry = host_registry()
    for path in settings.METRICS_COLLECTORS:
        registry.register(import_string(path)())
    return registry


def broker_queues() -> list[str]:
    """The Celery queues this deployment routes tasks to (``CELERY_TASK_ROUTES``) and its
    default queue."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return sorted(routed | {settings.CELERY_TASK_DEFAULT_QUEUE})


def up_then_gauges(
    *,
    up: tuple[str, str],
    read: Callable[[], T],
    errors: tuple[type[Exception], ...],
    log: Callable[[Exception], None],
    gauges: Callable[[T], Iterable[Metric]],
) -> Iterator[Metric]:
    """A scrape-time collector's metrics: the gauge ``up`` (name, help) at 1 when ``read()``
    answered, then the families ``gauges`` makes of its answer; at 0 and nothing else when
    ``read`` raised one of ``errors`` (``log`` is called with it inside the handler), so a
    source that does not answer never fails the whole scrape."""
    answered = GaugeMetricFamily(*up)
    try:
        value = read()
    except errors as exc:
        log(exc)
        answered.add_metric([], 0)
        yield answered
        return
    answered.add_metric([], 1)
    yield answered
    yield from gauges(value)


# kombu's Redis transport keeps a queue's messages of priority 3, 6 and 9 in lists of their
# own beside the queue's (kombu.transport.redis: PRIORITY_STEPS, Channel.sep).
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class BrokerCollector:
    """``recharge_queue_messages{queue}``: messages waiting in each Celery queue of this
    deployment, read at scrape time — on Redis the ``LLEN`` of its lists under
    ``DEPLOYMENT_NAMESPACE``, on RabbitMQ the message count of a passive declare of its
    namespaced queue (messages ready, not those delivered and unacknowledged);
    ``recharge_broker_up`` 0, and no lengths, when the broker does not answer within a
    second."""

    def collect(self):
        yield from up_then_gauges(
            up=("recharge_broker_up", "Whether the broker answered the scrape."),
            read=_redis_lengths if settings.BROKER_IS_REDIS else _rabbitmq_lengths,
            errors=(redis.RedisError, *_AMQP_ERRORS),
            log=lambda exc: logger.warning("metrics: broker unreachable: %s", exc),
            gauges=_queue_gauges,
        )


def _queue_gauges(lengths: dict[str, int]) -> Iterator[Metric]:
    messages = GaugeMetricFamily(
        "recharge_queue_messages", "Messages waiting in a Celery queue.", labels=["queue"]
    )
    for queue, length in lengths.items():
        messages.add_metric([queue], length)
    yield messages


def _redis_lengths() -> dict[str, int]:
    prefix = f"{settings.DEPLOYMENT_NAMESPACE}:"
    queues = broker_queues()
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1
    )
    try:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(f"{prefix}{queue}{suffix}")
        counts = pipe.execute()
    finally:
        client.close()
    step = len(_PRIORITY_SUFFIXES)
    return {queue: sum(counts[i * step : (i + 1) * step]) for i, queue in enumerate(queues)}


# What a RabbitMQ that is down, refuses the guest or drops the connection raises.
_AMQP_ERRORS = (*Connection("amqp://").connection_errors, OSError)


def _rabbitmq_lengths() -> dict[str, int]:
    names = {q.alias: q.name for q in rabbitmq_queues(namespace=settings.DEPLOYMENT_NAMESPACE)}
    lengths = {}
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=1) as connection:
        for queue in broker_queues():
            # A passive declare of a queue no worker has declared yet fails and closes its
            # channel: such a queue holds nothing, so it counts 0, on a fresh channel.
            with connection.channel() as channel:
                try:
                    lengths[queue] = channel.queue_declare(names[queue], passive=True)[1]
                except connection.channel_errors:
                    lengths[queue] = 0
    return lengths
