"""The receiving side of queue targets (scheme 1): a subscriber consumes its own queue
(``notifications.queues.notify_queue``) and hands each message to a handler of the receiving
app, ``handler(body: bytes, headers: dict) -> (ok: bool, reason: str)``; ``headers`` are the
Standard Webhooks ones and ``attempt``. Run by ``manage.py notifications_consume``.

- ok: an acknowledgement (``publisher.ack_body``) is published to the acknowledgements' queue,
  then the message is acked. A subscriber that dies between the two leaves the message to be
  redelivered: the handler applies idempotently, and a second acknowledgement changes nothing.
- not ok (or the handler raised): the message is rejected without requeue. RabbitMQ
  dead-letters it to the queue's ``.dead`` queue (for inspection), Redis drops it; either way
  the notifier publishes it again on its schedule, and reconciliation remains the backstop.
- A subscriber that dies before acking leaves its messages unacknowledged: RabbitMQ
  redelivers them as soon as the connection is gone, Redis after its visibility timeout.
"""

import logging
from collections.abc import Callable

from django.db import close_old_connections
from kombu import Producer
from kombu.mixins import ConsumerMixin

from . import queues
from .publisher import ack_body

logger = logging.getLogger(__name__)

Handler = Callable[[bytes, dict], tuple[bool, str]]
# Messages a subscriber holds unacknowledged at once: enough to keep it busy, few enough that
# a subscriber that dies strands few (redelivered).
PREFETCH = 16


class Subscriber(ConsumerMixin):
    """Consumes subscriber ``name``'s queue over ``connection`` (a kombu Connection), calling
    ``handler`` for each message; ``run()`` until ``should_stop``, reconnecting by itself."""

    def __init__(self, *, connection, name: str, handler: Handler):
        self.connection = connection
        self.name = name
        self.handler = handler
        self._producer: Producer | None = None

    def get_consumers(self, Consumer, channel):
        # Declared here too, so a dead letter has somewhere to go before anything was sent.
        queues.dead_queue(self.name)(channel).declare()
        self._producer = Producer(channel, exchange=queues.exchange())
        consumer = Consumer(
            queues=[queues.notify_queue(self.name)],
            on_message=self.on_message,
            prefetch_count=PREFETCH,
        )
        return [consumer]

    def on_message(self, message) -> None:
        """Handle one message (see the module docstring)."""
        headers = dict(message.headers or {})
        number = headers.get("attempt")
        ok, reason = self._handle(message.body, headers)
        if ok and type(number) is int:
            self._producer.publish(
                ack_body(webhook_id=headers["webhook-id"], number=number),
                routing_key=queues.acks_queue().routing_key,
                declare=[queues.acks_queue()],
                serializer="json",
                delivery_mode="persistent",
            )
            message.ack()
            return
        if ok:
            reason = "no attempt number in the message headers"
        logger.warning("refused %s: %s", headers.get("webhook-id", "(no webhook-id)"), reason)
        message.reject(requeue=False)

    def _handle(self, body, headers: dict) -> tuple[bool, str]:
        if isinstance(body, str):  # a transport that hands back text: the bytes sent
            body = body.encode("utf-8")
        close_old_connections()  # as Django does around a request: a broken one is dropped
        try:
            return self.handler(body, headers)
        except Exception as exc:  # the notifier publishes it again; this one is refused
            logger.exception("handler failed on %s", headers.get("webhook-id"))
            return False, f"handler error: {type(exc).__name__}"
