"""The queue transport's settings: the queue names' prefix follows the broker
(config/settings/notifications.py), and accounts' transport and queue name are checked when
the settings load (config/settings/accounts.py). Settings are read once per process, so each
case loads them in a fresh Python with the environment it names."""

import os
import subprocess
import sys

import pytest

from devstack.processes import ROOT

PROBE = """
import django
django.setup()
from django.conf import settings
print(repr(settings.NOTIFY_QUEUE_PREFIX))
"""


def load(**environment: str) -> subprocess.CompletedProcess:
    """Load the settings in a fresh process with ``environment`` (and no CELERY_BROKER_URL
    but the one given); what it printed."""
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **environment)
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("broker", "prefix"),
    [
        ({}, "''"),
        ({"CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"}, "'pay-test.'"),
    ],
)
def test_queue_names_carry_the_namespace_on_rabbitmq_only(broker, prefix):
    """RabbitMQ has no key prefix: the names start with the namespace; on Redis kombu's
    global_keyprefix does it, and the names carry none."""
    done = load(DEPLOYMENT_NAMESPACE="pay-test", **broker)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == prefix


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"ACCOUNTS_NOTIFY_TRANSPORT": "amqp"}, "ACCOUNTS_NOTIFY_TRANSPORT must be"),
        ({"ACCOUNTS_NOTIFY_QUEUE": "Accounts_1"}, "ACCOUNTS_NOTIFY_QUEUE must be"),
    ],
)
def test_a_bad_transport_or_queue_name_stops_the_settings(environment, message):
    """An unknown transport or a malformed queue name: the process does not start, and says
    why."""
    done = load(**environment)

    assert done.returncode != 0
    assert message in done.stderr
