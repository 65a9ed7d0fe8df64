"""Queue targets' side of the notifier (scheme 1; names in ``notifications.queues``): publish a
claimed attempt on the broker, and read the subscribers' acknowledgements.

kombu is synchronous, so each worker process publishes on one thread of its own, over one
connection and producer it keeps (``publisher()``): the dispatcher's event loop awaits the
publish without blocking on the broker. A publish is one attempt: the frozen body, the same
Standard Webhooks headers an HTTP attempt carries plus ``attempt`` (its number),
``message_id`` = webhook-id, persistent, and confirmed by RabbitMQ before it counts (the
Celery app's ``confirm_publish``). It is recorded as queued, awaiting acknowledgement, and
the notification is due again after the next step of its schedule: published again unless
an acknowledgement delivered it first. A publish that fails (broker down, not confirmed in
time) is a failed attempt (``broker: …``), retried on the same schedule.

Acknowledgements are read by an ``AckReader`` thread of each worker process's dispatcher
(started where the deployment has queue targets, notifications/dispatcher.py): the workers
run anyway, so there is no further process to deploy, and acknowledgements are recorded as
long as any worker is up. Several processes read them as competing consumers; each is recorded once
(``services.notification_acknowledge`` is idempotent).
"""

import json
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from celery import current_app
from django.db import DatabaseError, close_old_connections, connections
from kombu import Producer
from kombu.mixins import ConsumerMixin

from . import http, queues
from .conf import notify_settings

logger = logging.getLogger(__name__)

QUEUED = "queued, awaiting acknowledgement"
# Seconds an acknowledgement that arrived before its attempt was recorded waits (in steps)
# for the dispatcher to record it, before it is put back on the queue for later.
EARLY_ACK_WAIT = 2.0
EARLY_ACK_STEP = 0.05
DATABASE_RETRY = 1.0  # seconds before an acknowledgement the database refused is retried

_instance: "Publisher | None" = None
_instance_lock = threading.Lock()


def publisher() -> "Publisher":
    """This process's publisher (a new one after a fork)."""
    global _instance
    with _instance_lock:
        if _instance is None or _instance.pid != os.getpid():
            _instance = Publisher()
        return _instance


def message_headers(headers: dict, *, number: int) -> dict:
    """The message headers of attempt ``number``: the signed Standard Webhooks ones, and
    ``attempt``, which the subscriber's acknowledgement names."""
    signed = {
        name: headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    return {**signed, "attempt": number}


class Publisher:
    """One thread, one broker connection and producer, kept and reused; a connection that
    failed is dropped and the next publish opens a new one."""

    def __init__(self):
        self.pid = os.getpid()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notifications-pub")
        self._connection = None
        self._producer = None

    def submit(self, claimed) -> Future:
        """Publish ``claimed`` (a signed ``delivery.Claimed`` for a queue target) on the
        publisher's thread; the future's result is an ``http.PostResult`` (never raises)."""
        return self._executor.submit(self.publish, claimed)

    def publish(self, claimed) -> http.PostResult:
        """Publish ``claimed`` now, on the calling thread (the publisher's own, or a test's).
        ``excerpt`` is ``QUEUED`` once the broker has it; ``error`` says why it has not."""
        began = time.monotonic()
        name = queues.queue_name(claimed.url)
        try:
            queue = queues.notify_queue(name)
            self._producer_ready().publish(
                claimed.body,
                exchange=queues.exchange(),
                routing_key=queue.routing_key,
                declare=[queue, queues.dead_queue(name)],
                content_type="application/json",
                content_encoding="utf-8",
                headers=message_headers(claimed.headers, number=claimed.number),
                message_id=claimed.headers["webhook-id"],
                delivery_mode="persistent",
                retry=False,
                timeout=notify_settings.ATTEMPT_DEADLINE,
                confirm_timeout=notify_settings.ATTEMPT_DEADLINE,
            )
        except Exception as exc:  # whatever the broker did, this attempt failed: retried
            logger.warning("publish to %s failed: %s", claimed.url, exc)
            self._drop()
            error = f"broker: {type(exc).__name__}: {exc}"[:255]
            return http.PostResult(None, "", error, _ms(began))
        return http.PostResult(None, QUEUED, "", _ms(began))

    def _producer_ready(self) -> Producer:
        if self._producer is None:
            connection = current_app.connection_for_write(
                connect_timeout=notify_settings.CONNECT_TIMEOUT
            )
            self._connection = connection
            connection.ensure_connection(max_retries=1)
            self._producer = Producer(connection)
        return self._producer

    def _drop(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken: nothing left to release
                logger.debug("publisher: releasing a broken connection", exc_info=True)


def _ms(began: float) -> int:
    return int((time.monotonic() - began) * 1000)


class AckReader(ConsumerMixin):
    """Consumes ``<prefix>notify.acks`` and records each acknowledgement
    (``services.notification_acknowledge``); reconnects by itself (kombu's ConsumerMixin).
    ``start()`` runs it on a daemon thread until ``stop()``."""

    def __init__(self):
        self.connection = current_app.connection_for_read(
            connect_timeout=notify_settings.CONNECT_TIMEOUT
        )
        self._thread = threading.Thread(target=self._run, name="notifications-acks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.should_stop = True

    def _run(self) -> None:
        # ConsumerMixin.run() rides out broker errors itself; anything else (a bug) must not
        # end the thread, or this process would record no acknowledgement again.
        while not self.should_stop:
            try:
                self.run()
            except Exception:
                logger.exception("acknowledgements: unexpected error; retrying")
                time.sleep(DATABASE_RETRY)
        connections.close_all()

    def get_consumers(self, Consumer, channel):
        return [
            Consumer(
                queues=[queues.acks_queue()],
                on_message=self.on_ack,  # the raw body: a malformed one is dropped, not raised
                prefetch_count=notify_settings.CLAIM_BATCH,
            )
        ]

    def on_ack(self, message) -> None:
        """Record one acknowledgement and ack it; one the database cannot record yet (its
        attempt not recorded, the database away) goes back on the queue."""
        try:
            recorded = self._record(message.body)
        except DatabaseError:
            logger.exception("acknowledgement not recorded; retrying")
            connections.close_all()
            time.sleep(DATABASE_RETRY)
            message.requeue()
            return
        if recorded == "early":
            message.requeue()
        else:
            message.ack()

    def _record(self, body) -> str:
        from .services import notification_acknowledge

        close_old_connections()
        fields = _ack_fields(body)
        if fields is None:
            logger.error("malformed acknowledgement dropped: %r", body)
            return "malformed"
        deadline = time.monotonic() + EARLY_ACK_WAIT
        while True:
            outcome = notification_acknowledge(**fields)
            if outcome != "early" or time.monotonic() >= deadline:
                return outcome
            time.sleep(EARLY_ACK_STEP)


def ack_body(*, webhook_id: str, number: int) -> dict:
    """The acknowledgement a subscriber publishes for attempt ``number`` of ``webhook_id``."""
    return {"webhook_id": webhook_id, "attempt": number, "ok": True}


def _ack_fields(body) -> dict | None:
    """``{"webhook_id", "number"}`` of a well-formed acknowledgement, else None."""
    try:
        body = json.loads(body)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("ok") is not True:
        return None
    webhook_id, number = body.get("webhook_id"), body.get("attempt")
    if not isinstance(webhook_id, str) or type(number) is not int or number < 1:
        return None
    return {"webhook_id": webhook_id, "number": number}
