"""``/metrics`` for Prometheus: the counters every process of this host wrote (multiprocess
mode, config/settings/metrics.py) plus the gauges the collectors named in
``METRICS_COLLECTORS`` compute at scrape time; and the broker's queue lengths, one of them."""

import logging

import redis
from django.conf import settings
from django.utils.module_loading import import_string
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)


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


# kombu's Redis transport keeps a queue's messages of priority 3, 6 and 9 in lists of their
# own beside the queue's (kombu.transport.redis: PRIORITY_STEPS, Channel.sep).
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class BrokerCollector:
    """``recharge_queue_messages{queue}``: messages waiting in each Celery queue on Redis
    (``LLEN`` of its lists under this deployment's ``DEPLOYMENT_NAMESPACE``), read at scrape
    time; ``recharge_broker_up`` 0, and no lengths, when Redis does not answer within a
    second."""

    def collect(self):
        up = GaugeMetricFamily("recharge_broker_up", "Whether the broker answered the scrape.")
        try:
            lengths = self._lengths()
        except redis.RedisError as exc:
            logger.warning("metrics: broker unreachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        messages = GaugeMetricFamily(
            "recharge_queue_messages", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        for queue, length in lengths.items():
            messages.add_metric([queue], length)
        yield messages

    @staticmethod
    def _lengths() -> dict[str, int]:
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
