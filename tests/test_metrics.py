"""``/metrics`` (core/views.py, core/metrics.py) and what it counts: attempts recorded
(notifications/metrics.py), receipts and reconciliations (accounts/metrics.py), gauges read
from the database and the broker at scrape time.

Counters are read through the view, as Prometheus reads them (multiprocess mode sums every
process's files), and compared before and after: other tests in this process count too.
"""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
import redis
import requests
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone
from kombu import Connection, Producer
from prometheus_client.parser import text_string_to_metric_families

from accounts import services as accounts_services
from config.broker import rabbitmq_queues
from config.celery import serve_metrics
from core.metrics import BrokerCollector, broker_queues
from devstack.redis import free_port
from notifications import services, stats
from notifications.delivery import deliveries_run
from notifications.http import PostResult
from notifications.metrics import NotificationsCollector, attempt_kind, attempts_observe
from notifications.models import Endpoint, Notification
from tests.conftest import sign
from tests.helpers import WEBHOOK_ID, notification_payload
from tests.receiver import Receiver, Reply

SECRET = "whsec_bWV0cmljcy10ZXN0LXNlY3JldC1mb3ItdGhlLXNob3A="
TOKEN = "a-metrics-token-long-enough-for-production"
ROOT = Path(__file__).resolve().parents[1]
State = Notification.State


def secrets_for(sender_key: str) -> list[str]:
    """NOTIFY_SECRET_RESOLVER for these tests."""
    return [SECRET]


@pytest.fixture(autouse=True)
def metrics_settings(settings, deliver_apply_async):
    settings.METRICS_TOKEN = ""
    settings.NOTIFY_SECRET_RESOLVER = "tests.test_metrics.secrets_for"
    settings.NOTIFY_RETRY_JITTER = 0.0
    settings.NOTIFY_ATTEMPT_DEADLINE = 2.0
    return settings


def scrape(client, **headers) -> dict:
    """GET /metrics and parse it: ``{(sample name, frozenset(labels)): value}``."""
    response = client.get(reverse("metrics"), headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    """A sample's value; 0 for one not exported yet (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- The view -------------------------------------------------------------------------------


def test_metrics_are_open_without_a_token_and_parse(client, db):
    """With METRICS_TOKEN empty (development) anyone may scrape; the body is Prometheus's
    text format, with the database gauges in it."""
    samples = scrape(client)

    assert value(samples, "notifications_database_up") == 1


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "Send Authorization: Bearer <METRICS_TOKEN>."),
        ("Basic dXNlcjpwYXNz", "Send Authorization: Bearer <METRICS_TOKEN>."),
        ("Bearer wrong-token", "Wrong metrics token."),
    ],
)
def test_a_token_is_required_when_set(client, db, settings, authorization, reason):
    """With METRICS_TOKEN set, a scrape without it, or with another, is a 401 saying what is
    missing (and a WWW-Authenticate challenge); nothing of the metrics is shown."""
    settings.METRICS_TOKEN = TOKEN
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get(reverse("metrics"), headers=headers)

    assert response.status_code == 401
    assert response.content.decode() == reason
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


@pytest.mark.parametrize("configured", [TOKEN, f"{TOKEN}\n", f" {TOKEN} "])
def test_the_right_token_scrapes(client, db, settings, configured):
    """``Authorization: Bearer <METRICS_TOKEN>`` gets the metrics, also when the configured
    token carries the white space a secret file or manifest often ends in (production's
    check measures it stripped, so the scrape compares it stripped too)."""
    settings.METRICS_TOKEN = configured

    samples = scrape(client, Authorization=f"Bearer {TOKEN}")

    assert value(samples, "notifications_database_up") == 1


def test_metrics_are_read_only(client, db):
    """Only GET: a POST is a 405."""
    assert client.post(reverse("metrics")).status_code == 405


# --- Gauges from the database ---------------------------------------------------------------


def make_notification(state: str, *, due_seconds_ago: float = 0, url="http://127.0.0.1:9/n"):
    notification = services.notification_create(
        sender_key="shop", subject="TX", event_type="recharge.succeeded", target_url=url, data={}
    )
    due = timezone.now() - timedelta(seconds=due_seconds_ago)
    Notification.objects.filter(pk=notification.pk).update(state=state, next_attempt_at=due)
    return notification


def test_backlog_gauges_count_the_rows(client, db):
    """Notifications by state (delivered ones left out), those due now, the age of the
    oldest due one, and endpoints by circuit state, as the rows stand."""
    make_notification(State.PENDING, due_seconds_ago=120)
    make_notification(State.PENDING, due_seconds_ago=-600)  # due in ten minutes
    make_notification(State.EXHAUSTED)
    make_notification(State.DELIVERED)
    Endpoint.objects.create(sender_key="other", origin="https://b.example", state="open")

    samples = scrape(client)

    assert value(samples, "notifications_backlog", state="pending") == 2
    assert value(samples, "notifications_backlog", state="exhausted") == 1
    assert value(samples, "notifications_backlog", state="sending") == 0
    assert ("notifications_backlog", frozenset({("state", "delivered")})) not in samples
    assert value(samples, "notifications_due") == 1
    assert 120 <= value(samples, "notifications_oldest_due_age_seconds") < 180
    assert value(samples, "notifications_endpoints", state="closed") == 1
    assert value(samples, "notifications_endpoints", state="open") == 1
    assert value(samples, "notifications_endpoints", state="disabled") == 0


# --- Counters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "outcome", "kind"),
    [(Reply(status=204), "delivered", "2xx"), (Reply(status=503), "failed", "5xx")],
)
def test_a_recorded_attempt_is_counted_with_its_duration(client, db, reply, outcome, kind):
    """A real attempt to a real receiver, recorded by the delivery code, adds one to
    ``notifications_attempts_total`` under its outcome and kind, and one observation to the
    duration histogram."""
    before = scrape(client)
    with Receiver(default=reply) as receiver:
        notification = make_notification(State.PENDING, url=receiver.url)
        deliveries_run(hints=[notification.pk])

    after = scrape(client)

    name = "notifications_attempts_total"
    assert value(after, name, outcome=outcome, kind=kind) == (
        value(before, name, outcome=outcome, kind=kind) + 1
    )
    count = "notifications_attempt_duration_seconds_count"
    assert value(after, count) == value(before, count) + 1


@pytest.mark.parametrize(
    ("status_code", "error", "kind"),
    [
        (404, "HTTP 404", "4xx"),
        (None, "timeout after 10 s", "timeout"),
        (None, "connection error: [Errno 111] Connection refused", "connect_error"),
        (None, "refused destination: 10.0.0.1 is a private address", "refused_destination"),
        (None, "not sent: cannot sign (KeyError: 'shop')", "unsigned"),
        (None, "not sent: CancelledError", "not_sent"),
        (None, "request error: ClientPayloadError: cut", "request_error"),
    ],
)
def test_attempt_kinds(status_code, error, kind):
    """What happened to an attempt, in few values: the status class, else the error's kind."""
    assert attempt_kind(status_code=status_code, error=error) == kind


def test_receipts_are_counted_by_outcome_and_refusal_reason(client, recharge):
    """The notify endpoint counts what it did with each request: applied, duplicate, and
    refusals by reason (here a forged signature, ``unverified``, and a body that is not JSON,
    ``not_json``)."""
    name = "recharge_receipts_total"
    before = scrape(client)
    body = json.dumps(notification_payload(recharge))
    headers = sign(body, webhook_id=WEBHOOK_ID)
    url = reverse("accounts:notify")
    post = {"data": body, "content_type": "application/json"}
    forged = {**headers, "webhook-signature": "v1,Zm9yZ2Vk"}

    assert client.post(url, **post, headers=headers).status_code == 200
    assert client.post(url, **post, headers=headers).status_code == 200
    assert client.post(url, **post, headers=forged).status_code == 400
    unsigned_type = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    text = client.post(url, data=body, content_type="text/plain", headers=unsigned_type)
    assert text.status_code == 415
    after = scrape(client)

    def delta(**labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(outcome="applied", reason="") == 1
    assert delta(outcome="duplicate", reason="") == 1
    assert delta(outcome="refused", reason="unverified") == 1
    assert delta(outcome="refused", reason="not_json") == 1


def test_reconciliation_outcomes_are_counted(client, recharge):
    """Each recharge the reconciliation tick asks payments about is counted by outcome
    (here payments unreachable)."""
    name = "recharge_reconciliations_total"
    before = scrape(client)
    type(recharge).objects.filter(pk=recharge.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    unreachable = accounts_services.PaymentsApiError("unreachable", status_code=None)
    with mock.patch.object(accounts_services, "_query_and_apply", side_effect=unreachable):
        counts = accounts_services.recharges_reconcile_pending()

    after = scrape(client)
    assert counts == {"unreachable": 1}
    assert (
        value(after, name, outcome="unreachable") == value(before, name, outcome="unreachable") + 1
    )


# --- The broker -----------------------------------------------------------------------------


def collected(collector) -> dict:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_queue_lengths_are_read_from_the_broker(settings):
    """``recharge_queue_messages{queue}``: the length of each routed queue's list (every
    priority's) under this deployment's namespace; ``recharge_broker_up`` 1. (Redis as the
    broker whichever broker the suite runs on.)"""
    settings.CELERY_BROKER_URL, settings.BROKER_IS_REDIS = settings.REDIS_URL, True
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    prefix = f"{settings.DEPLOYMENT_NAMESPACE}:"
    keys = [f"{prefix}notifications", f"{prefix}notifications\x06\x163", f"{prefix}periodic"]
    try:
        client.delete(*keys)
        client.rpush(keys[0], "a", "b")
        client.rpush(keys[1], "c")
        client.rpush(keys[2], "d")
        samples = collected(BrokerCollector())
    finally:
        client.delete(*keys)
        client.close()

    assert value(samples, "recharge_broker_up") == 1
    assert value(samples, "recharge_queue_messages", queue="notifications") == 3
    assert value(samples, "recharge_queue_messages", queue="periodic") == 1
    assert {"notifications", "periodic", "default"} <= set(broker_queues())


RABBITMQ = os.environ.get("CI_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def rabbitmq_namespace(settings):
    """The settings switched to this machine's RabbitMQ under a namespace of the test's own,
    whose queues are deleted afterwards. Skipped where no RabbitMQ answers (fails under CI)."""
    try:
        Connection(RABBITMQ, connect_timeout=1).ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no RabbitMQ here"
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no RabbitMQ at {RABBITMQ}: {exc}")
    namespace = f"metrics-test-{os.getpid()}"
    settings.CELERY_BROKER_URL, settings.BROKER_IS_REDIS = RABBITMQ, False
    settings.DEPLOYMENT_NAMESPACE = namespace
    queues = {queue.alias: queue for queue in rabbitmq_queues(namespace=namespace)}
    yield queues
    with Connection(RABBITMQ) as connection:
        for queue in queues.values():
            queue(connection.default_channel).delete()


def test_queue_lengths_on_rabbitmq_are_its_namespaced_queues_message_counts(rabbitmq_namespace):
    """On RabbitMQ each queue's length is the message count of this namespace's queue
    (``<namespace>.notifications``); a queue no worker has declared yet counts 0 and does
    not stop the others from being read; ``recharge_broker_up`` 1."""
    queues = rabbitmq_namespace
    with Connection(RABBITMQ) as connection:
        channel = connection.default_channel
        queues["notifications"](channel).declare()
        queues["periodic"](channel).declare()
        producer = Producer(channel, exchange=queues["notifications"].exchange)
        for _ in range(3):
            producer.publish({}, routing_key=queues["notifications"].routing_key)
        producer.publish({}, routing_key=queues["periodic"].routing_key)

        samples = collected(BrokerCollector())

    assert value(samples, "recharge_broker_up") == 1
    assert value(samples, "recharge_queue_messages", queue="notifications") == 3
    assert value(samples, "recharge_queue_messages", queue="periodic") == 1
    assert value(samples, "recharge_queue_messages", queue="default") == 0  # never declared


def test_an_unreachable_rabbitmq_is_up_0_and_no_lengths(settings):
    """A RabbitMQ that does not answer: ``recharge_broker_up`` 0 and no queue gauge, not an
    error."""
    settings.CELERY_BROKER_URL, settings.BROKER_IS_REDIS = (
        f"amqp://guest:guest@127.0.0.1:{free_port()}//",
        False,
    )

    samples = collected(BrokerCollector())

    assert value(samples, "recharge_broker_up") == 0
    assert not [key for key in samples if key[0] == "recharge_queue_messages"]


def test_an_unreachable_broker_is_up_0_and_no_lengths(client, db, settings):
    """A broker that does not answer: ``recharge_broker_up`` 0, no queue gauge, and the
    scrape still succeeds (the database gauges are there)."""
    settings.CELERY_BROKER_URL, settings.BROKER_IS_REDIS = "redis://127.0.0.1:1/0", True

    samples = scrape(client)

    assert value(samples, "recharge_broker_up") == 0
    assert not [key for key in samples if key[0] == "recharge_queue_messages"]
    assert value(samples, "notifications_database_up") == 1


def test_a_database_that_does_not_answer_is_up_0_and_no_gauges(db, caplog):
    """The notification gauges cannot be read (a DatabaseError): ``notifications_database_up``
    0, none of those gauges, the failure logged with its traceback, not an error."""
    with mock.patch.object(stats, "endpoints_by_state", side_effect=DatabaseError("down")):
        samples = collected(NotificationsCollector())

    assert value(samples, "notifications_database_up") == 0
    assert {key[0] for key in samples} == {"notifications_database_up"}
    assert "cannot read the notification gauges" in caplog.text and "down" in caplog.text


# --- A worker host's own metrics server ----------------------------------------------------


def test_a_worker_serves_its_hosts_counters_on_worker_metrics_port(settings):
    """With WORKER_METRICS_PORT set, the worker's start (``worker_init``) serves this host's
    counters there: an attempt counted in this process is in what it serves. Unset: nothing
    is started."""
    settings.WORKER_METRICS_PORT = None
    with mock.patch("prometheus_client.start_http_server") as start:
        serve_metrics()
    start.assert_not_called()

    settings.WORKER_METRICS_PORT = free_port()
    serve_metrics()
    attempts_observe([(None, PostResult(None, "", "timeout after 10 s", 10000), None)])

    url = f"http://127.0.0.1:{settings.WORKER_METRICS_PORT}/metrics"
    text = requests.get(url, timeout=5).text
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert value(samples, "notifications_attempts_total", outcome="failed", kind="timeout") >= 1
    assert not [key for key in samples if key[0] == "recharge_broker_up"]  # counters only


# --- The multiprocess directory ---------------------------------------------------------------


def test_a_process_that_records_nothing_leaves_no_file_to_scrape(tmp_path):
    """A process that counts nothing (``manage.py check`` here; any management command, a
    shell) writes no file into PROMETHEUS_MULTIPROC_DIR: every scrape reads every file there
    and the directory is only emptied when the stack starts, so one file per command run
    would grow the scrape's cost for as long as the host runs."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    command = [sys.executable, "manage.py", "check"]

    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(path.name for path in tmp_path.iterdir()) == []
