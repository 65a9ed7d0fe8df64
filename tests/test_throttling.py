"""The fixed-window counter in Redis (core/throttling.py) and the notify endpoint's two
budgets per client address (accounts/throttling.py)."""

import pytest
from django.core.cache import cache
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.throttling import notify_throttle
from core.throttling import throttle_hit

pytestmark = pytest.mark.usefixtures("fresh_throttles")


def request_from(address: str) -> Request:
    return Request(APIRequestFactory().post("/api/accounts/notify/", REMOTE_ADDR=address))


NOW = 1_800_000_030.5  # a fixed clock: the window (starting at 1_800_000_000) cannot turn


def test_each_request_counts_once_and_the_window_key_expires(monkeypatch):
    """The count is the number of requests in the window, past the rate the wait is the rest
    of the window, and the key always carries a TTL (created with its expiry, so it cannot
    outlive its window)."""
    monkeypatch.setattr("core.throttling.time.time", lambda: NOW)

    waits = [throttle_hit(key="throttle_t_192.0.2.7", rate="3/min", scope="t") for _ in range(4)]

    assert waits == [None, None, None, 29.5]
    client = cache._cache.get_client(write=False)
    key = cache.make_and_validate_key(f"throttle_t_192.0.2.7_{1_800_000_000}")
    assert int(client.get(key)) == 4
    assert 0 < client.ttl(key) <= 61


def test_no_rate_is_no_limit():
    """An empty rate (a setting left empty) counts nothing and refuses nothing."""
    assert throttle_hit(key="throttle_t_x", rate="", scope="t") is None


def test_notify_budgets_are_per_address_and_apart(settings, monkeypatch):
    """Each client address has its own budgets, and failures spend only the failure budget:
    an address whose failures are refused still has its verified budget."""
    monkeypatch.setattr("core.throttling.time.time", lambda: NOW)
    settings.ACCOUNTS_NOTIFY_THROTTLE_RATE = "1/min"
    settings.ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE = "1/min"
    first, second = request_from("192.0.2.1"), request_from("192.0.2.2")

    notify_throttle(first, verified=False)
    notify_throttle(second, verified=False)
    with pytest.raises(Throttled, match="failing verification") as refused:
        notify_throttle(first, verified=False)
    notify_throttle(first, verified=True)
    with pytest.raises(Throttled, match="Request was throttled"):
        notify_throttle(first, verified=True)

    assert refused.value.wait == 30


def test_any_cache_backend_still_counts(settings, monkeypatch):
    """On a cache other than Django's RedisCache (here LocMem) the counter falls back to the
    backend's own add + incr and still limits."""
    monkeypatch.setattr("core.throttling.time.time", lambda: NOW)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    waits = [throttle_hit(key="throttle_t_192.0.2.9", rate="2/min", scope="t") for _ in range(3)]

    assert waits == [None, None, 29.5]
