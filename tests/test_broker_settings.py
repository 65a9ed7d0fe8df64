"""The broker setting (config/settings/celery.py) and its RabbitMQ names (config/broker.py).

Settings are read once per process, so each choice of broker is loaded in a fresh Python with
the environment the test names; it prints what a worker, a publisher and beat would use.
"""

import json
import os
import subprocess
import sys

import pytest

from config.broker import broker_is_redis, rabbitmq_exchanges, rabbitmq_queues
from devstack.processes import ROOT

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"

# What the settings give Celery: the broker, its transport options, the queues a worker
# started with the Procfile's ``--queues notifications,periodic`` consumes, where a
# delivery and a beat entry's ``queue="periodic"`` are published, the control exchange.
PROBE = """
import json, django
django.setup()
from django.conf import settings
from config.celery import app
queues = app.amqp.queues
queues.select(["notifications", "periodic"])
route = app.amqp.router.route
print(json.dumps({
    "broker": app.conf.broker_url,
    "redis": settings.REDIS_URL,
    "options": app.conf.broker_transport_options,
    "consumed": sorted(q.name for q in queues.consume_from.values()),
    "quorum": sorted(
        q.name for q in queues.consume_from.values()
        if (q.queue_arguments or {}).get("x-queue-type") == "quorum"
    ),
    "deliver": route({}, "notifications.deliver")["queue"].name,
    "beat": route({"queue": "periodic"}, "notifications.sweep")["queue"].name,
    "control": app.conf.control_exchange,
    "events": app.conf.event_exchange,
    "heartbeat": app.conf.broker_heartbeat,
}))
"""


def probe(**environment: str) -> dict:
    """The settings' Celery configuration in a fresh process with ``environment`` added (and
    no CELERY_BROKER_URL but the one given)."""
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **environment)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("url", "redis"),
    [
        ("redis://127.0.0.1:6379/0", True),
        ("rediss://cache.internal:6380/1", True),
        ("redis+socket:///run/redis.sock", True),
        ("amqp://guest:guest@127.0.0.1:5672//", False),
        ("pyamqp://rabbit/vhost", False),
        ("amqps://rabbit:5671//", False),
    ],
)
def test_broker_kind_is_read_from_the_url_scheme(url, redis):
    """A ``redis``, ``rediss`` or ``redis+socket`` URL is Redis; ``amqp`` and its variants
    are RabbitMQ."""
    assert broker_is_redis(url) is redis


def test_without_a_broker_url_the_broker_is_redis_as_before():
    """No CELERY_BROKER_URL: the broker is REDIS_URL, kept apart by the key prefix and
    redelivered after the visibility timeout; queues keep their plain names."""
    config = probe(DEPLOYMENT_NAMESPACE="pay-a", REDIS_URL="redis://127.0.0.1:6379/3")

    assert config["broker"] == config["redis"] == "redis://127.0.0.1:6379/3"
    assert config["options"] == {"visibility_timeout": 3600, "global_keyprefix": "pay-a:"}
    assert config["consumed"] == ["notifications", "periodic"]
    assert (config["deliver"], config["beat"]) == ("notifications", "periodic")


def test_rabbitmq_broker_url_namespaces_queues_and_exchanges():
    """CELERY_BROKER_URL naming RabbitMQ: the cache stays on REDIS_URL; the worker consumes
    the namespace's quorum queues, reached by their plain names from the routes and beat;
    the control and event exchanges carry the namespace; publisher confirms are on and no
    Redis-only option is passed."""
    config = probe(
        DEPLOYMENT_NAMESPACE="pay-a",
        REDIS_URL="redis://127.0.0.1:6379/3",
        CELERY_BROKER_URL=RABBITMQ,
    )

    assert (config["broker"], config["redis"]) == (RABBITMQ, "redis://127.0.0.1:6379/3")
    assert config["options"] == {"confirm_publish": True}
    assert config["consumed"] == config["quorum"] == ["pay-a.notifications", "pay-a.periodic"]
    assert (config["deliver"], config["beat"]) == ("pay-a.notifications", "pay-a.periodic")
    assert (config["control"], config["events"]) == ("pay-a", "pay-a.celeryev")
    assert config["heartbeat"] == 30


def test_two_namespaces_share_no_rabbitmq_name():
    """Two deployments on one RabbitMQ: no queue, routing key or exchange in common."""

    def names(namespace: str) -> set[str]:
        queues = rabbitmq_queues(namespace=namespace)
        return (
            {q.name for q in queues}
            | {q.routing_key for q in queues}
            | {q.exchange.name for q in queues}
            | set(rabbitmq_exchanges(namespace=namespace).values())
        )

    assert names("pay-a") and not names("pay-a") & names("pay-b")
