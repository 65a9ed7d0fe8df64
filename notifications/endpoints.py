"""Endpoints: the origin a URL belongs to, and the endpoint row of a sender and an origin."""

from urllib.parse import urlsplit

from .models import Endpoint, Notification
from .queues import is_queue_target


def origin_of(url: str) -> str:
    """``scheme://host:port`` of an http(s) URL, lower-cased, the port always written:
    ``https://Shop.example/notify`` → ``https://shop.example:443``; a queue target
    (``queue://accounts``, notifications/queues.py) is its own. Raises ``ValueError``."""
    if is_queue_target(url):
        return url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host, nor a queue target: {url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}:{parts.port or (443 if scheme == 'https' else 80)}"


def endpoint_id_for(*, sender_key: str, url: str) -> int:
    """The id of the endpoint ``url`` belongs to for ``sender_key``, created on first use.
    Raises ``ValueError`` for a URL without an http(s) origin."""
    endpoint, _ = Endpoint.objects.get_or_create(sender_key=sender_key, origin=origin_of(url))
    return endpoint.pk


def notifications_adopt(*, limit: int) -> int:
    """Give an endpoint to up to ``limit`` notifications written without one: by the release
    before endpoints existed, still running during a rolling deploy (web processes are
    replaced one by one after the migration). Returns how many were adopted."""
    orphans = Notification.objects.filter(endpoint=None).values_list(
        "pk", "sender_key", "target_url"
    )[:limit]
    adopted = 0
    for pk, sender_key, target_url in orphans:
        endpoint_id = endpoint_id_for(sender_key=sender_key, url=target_url)
        adopted += Notification.objects.filter(pk=pk, endpoint=None).update(endpoint_id=endpoint_id)
    return adopted
