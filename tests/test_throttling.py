"""The fixed-window throttle's counter in Redis (config/throttling.py)."""

import pytest
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.throttling import NotifyThrottle

pytestmark = pytest.mark.usefixtures("fresh_throttles")


def request_from(address: str) -> Request:
    return Request(APIRequestFactory().post("/api/accounts/notify/", REMOTE_ADDR=address))


NOW = 1_800_000_030.5  # a fixed clock: the window (starting at 1_800_000_000) cannot turn


def test_each_request_counts_once_and_the_window_key_expires(settings, monkeypatch):
    """The count is the number of requests in the window, and its key always carries a TTL
    (created with its expiry, so it cannot outlive its window)."""
    monkeypatch.setattr("core.throttling.time.time", lambda: NOW)
    settings.ACCOUNTS_NOTIFY_THROTTLE_RATE = "3/min"
    throttle = NotifyThrottle()
    request = request_from("192.0.2.7")

    allowed = [throttle.allow_request(request, view=None) for _ in range(4)]

    assert allowed == [True, True, True, False]
    client = cache._cache.get_client(write=False)
    key = cache.make_and_validate_key(f"throttle_notify_192.0.2.7_{1_800_000_000}")
    assert int(client.get(key)) == 4
    assert 0 < client.ttl(key) <= 61


def test_addresses_are_counted_apart(settings, monkeypatch):
    monkeypatch.setattr("core.throttling.time.time", lambda: NOW)
    settings.ACCOUNTS_NOTIFY_THROTTLE_RATE = "1/min"
    throttle = NotifyThrottle()

    assert throttle.allow_request(request_from("192.0.2.1"), view=None)
    assert throttle.allow_request(request_from("192.0.2.2"), view=None)
    assert not throttle.allow_request(request_from("192.0.2.1"), view=None)


def test_any_cache_backend_still_counts(settings, monkeypatch):
    """On a cache other than Django's RedisCache (here LocMem) the throttle falls back to
    the backend's own add + incr and still limits."""
    monkeypatch.setattr("core.throttling.time.time", lambda: NOW)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.ACCOUNTS_NOTIFY_THROTTLE_RATE = "2/min"
    throttle = NotifyThrottle()
    request = request_from("192.0.2.9")

    allowed = [throttle.allow_request(request, view=None) for _ in range(3)]

    assert allowed == [True, True, False]
