"""How each contender is fired, whatever receiver it is aimed at (the scenarios time them):
ours through the outbox, the bare Celery task, a plain thread pool. The peers are in
``bench.peers``."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
from django.db import transaction

from .common import EVENT_TYPE, SECRET, notification_body, recharge_data


def signed_bodies(tag: str, n: int) -> list[tuple[str, str]]:
    """``n`` distinct ``(webhook_id, body)`` pairs, bodies as ours would freeze them."""
    bodies = []
    for number in range(n):
        webhook_id = f"msg_{uuid.uuid4().hex}"
        bodies.append((webhook_id, notification_body(webhook_id, recharge_data(tag, number))))
    return bodies


def outbox_create(*, app_id: str, urls: list[str], n: int, tag: str) -> tuple[float, float]:
    """``notification_create`` for ``n`` rows to ``urls`` in turn (subjects ``<tag>-<i>``),
    in one transaction, whose commit sends their ``n`` wake-ups. Returns the
    ``time.time()`` before the first row and at the commit."""
    from notifications.services import notification_create

    began = time.time()
    committed = []
    with transaction.atomic():
        # Registered first, so it runs at the commit, before the n enqueues it triggers.
        transaction.on_commit(lambda: committed.append(time.time()))
        for number in range(n):
            notification_create(
                sender_key=app_id,
                subject=f"{tag}-{number}",
                event_type=EVENT_TYPE,
                target_url=urls[number % len(urls)],
                data=recharge_data(tag, number),
            )
    return began, committed[0]


def bare_send(*, urls: list[str], bodies: list[tuple[str, str]], errors_key: str) -> None:
    """One ``bench.bare_post`` task per body, to ``urls`` in turn; failures are counted in
    Redis at ``errors_key``."""
    from .tasks import bare_post

    for number, (webhook_id, body) in enumerate(bodies):
        url = urls[number % len(urls)]
        bare_post.apply_async(args=(url, body, webhook_id, SECRET, errors_key))


def thread_pool_post(
    *, urls: list[str], bodies: list[tuple[str, str]], threads: int, timeout: float
) -> list[bool]:
    """POST every signed body to ``urls`` in turn from ``threads`` threads (a keep-alive
    ``requests.Session`` each, no Celery, no database); whether each got a 2xx."""
    from notifications.signing import signed_headers

    local = threading.local()

    def post(item) -> bool:
        number, (webhook_id, body) = item
        if not hasattr(local, "session"):
            local.session = requests.Session()
        headers = signed_headers(
            webhook_id=webhook_id, body=body, secrets=[SECRET], timestamp=datetime.now(UTC)
        )
        try:
            response = local.session.post(
                urls[number % len(urls)],
                data=body.encode(),
                headers=headers,
                timeout=(3.05, 10),
                allow_redirects=False,
            )
        except requests.RequestException:
            return False
        return 200 <= response.status_code < 300

    with ThreadPoolExecutor(max_workers=threads) as executor:
        return list(executor.map(post, enumerate(bodies), timeout=timeout))


def attempt_errors(tag: str) -> dict[str, int]:
    """``{error: failed attempts}`` of ours for the notifications of ``tag`` (why a run was
    slow or did not finish: a receiver refusing, timing out, a circuit that opened)."""
    from django.db.models import Count

    from notifications.models import DeliveryAttempt

    failed = DeliveryAttempt.objects.filter(
        notification__subject__startswith=f"{tag}-", succeeded=False
    )
    counts = failed.values("error").annotate(n=Count("pk")).order_by("-n")[:10]
    return {row["error"]: row["n"] for row in counts}
