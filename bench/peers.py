"""The peers a Django team would pick instead, set up and fired as their READMEs intend.

- django-webhook: a ``Webhook`` subscribed to a model's create topic; each save sends its
  ``fire_webhook`` Celery task (on the ``bench`` queue, run by the worker under test).
- django-signal-webhooks: a ``Webhook`` row per receiver for ``bench.SignalPeerEvent``; each
  save starts a thread in the saving process (here the driver) that looks the hook up, POSTs
  with httpx under ``asyncio.run`` and writes the hook's last success back.
"""

import gc
import threading
import time

from django.db import transaction

from devstack.settle import wait_until

from .common import SECRET

# How django-signal-webhooks names the thread it starts per save (Thread's name shows its
# target since Python 3.10).
SIGNAL_THREAD_SUFFIX = "(default_hook_handler)"


def django_webhook_create(*, url: str, model_label: str) -> None:
    """A django-webhook ``Webhook`` to ``url`` for creates of ``model_label`` (its topic is
    created by django-webhook at migrate), signed with the bench secret."""
    from django_webhook.models import Webhook, WebhookSecret, WebhookTopic

    webhook = Webhook.objects.create(url=url)
    webhook.topics.add(WebhookTopic.objects.get(name=f"{model_label}/create"))
    WebhookSecret.objects.create(webhook=webhook, token=SECRET)


def django_webhook_fire(model, datas: list[dict]) -> float:
    """One ``model`` save per ``datas`` item in one transaction (its ``post_save`` sends a
    ``fire_webhook`` task per save at once, before the commit: django-webhook does not wait
    for it); returns the ``time.time()`` of the first save."""
    started = time.time()
    with transaction.atomic():
        for data in datas:
            model.objects.create(data=data)
    return started


def signal_hooks_create(*, urls: list[str], tag: str) -> list[str]:
    """A django-signal-webhooks ``Webhook`` per URL for creates of ``SignalPeerEvent``;
    their names, which ``SignalPeerEvent.hook`` refers to."""
    from signal_webhooks.models import Webhook
    from signal_webhooks.typing import SignalChoices

    names = [f"{tag}-{index}" for index in range(len(urls))]
    Webhook.objects.bulk_create(
        Webhook(
            name=name,
            signal=SignalChoices.CREATE,
            ref="bench.models.SignalPeerEvent",
            endpoint=url,
        )
        for name, url in zip(names, urls, strict=True)
    )
    return names


def signal_hook_filter(instance, method) -> dict:
    """django-signal-webhooks' ``FILTER_KWARGS``: an event goes to the hook it names."""
    return {"name": instance.hook}


def signal_fire(datas: list[dict], *, hooks: list[str], threads: int, timeout: float) -> float:
    """Save one ``SignalPeerEvent`` per ``datas`` item (autocommit, as separate requests
    would), spread over ``hooks`` in turn, holding each save back while ``threads`` of the
    peer's threads are alive; returns the ``time.time()`` of the first save. Raises
    WaitTimeout when the peer's threads do not make room within ``timeout`` seconds.

    Each of the peer's threads opens a database connection of its own and never closes it:
    Django closes it only when the garbage collector frees the dead thread's context, which
    can take long enough for PostgreSQL to refuse new clients (here 400 of 600 saves failed
    so with 256 threads, and 410 with 64, and the worker's dispatchers after them). So the
    harness collects garbage every ``threads`` saves, which bounds the connections to twice
    ``threads``, and once the peer is done (``signal_release``)."""
    from .models import SignalPeerEvent

    started = time.time()
    for number, data in enumerate(datas):
        if number % threads == 0:
            gc.collect()
        if signal_threads() >= threads:
            wait_until(
                lambda: signal_threads() < threads,
                timeout=timeout,
                interval=0.002,
                what="room among django-signal-webhooks' threads",
            )
        SignalPeerEvent.objects.create(hook=hooks[number % len(hooks)], data=data)
    return started


def signal_release() -> None:
    """Close the database connections the peer's finished threads left open (see
    ``signal_fire``)."""
    gc.collect()


def signal_threads() -> int:
    """django-signal-webhooks' threads alive in this process."""
    return sum(t.name.endswith(SIGNAL_THREAD_SUFFIX) for t in threading.enumerate())
