"""The signing secrets' short per-process memory (notifications/secrets.py)."""

import uuid

import pytest

from notifications import secrets

calls: list[str] = []
answers: dict[str, list[str]] = {}


def resolver(sender_key: str) -> list[str]:
    """A NOTIFY_SECRET_RESOLVER that records each call and answers from ``answers``."""
    calls.append(sender_key)
    return answers[sender_key]


@pytest.fixture
def sender(settings):
    """A sender key of this test only, resolved by ``resolver`` with secret ``whsec_one``."""
    settings.NOTIFY_SECRET_RESOLVER = "tests.test_notification_secrets.resolver"
    settings.NOTIFY_SECRET_CACHE_SECONDS = 10
    key = f"sender-{uuid.uuid4().hex}"
    answers[key] = ["whsec_one"]
    calls.clear()
    return key


def test_answer_is_reused_within_the_cache_time(sender):
    assert secrets.sender_secrets(sender) == ["whsec_one"]
    answers[sender] = ["whsec_two", "whsec_one"]  # rolled meanwhile

    assert secrets.sender_secrets(sender) == ["whsec_one"]
    assert calls == [sender]


def test_a_rolled_secret_signs_once_the_cache_time_is_over(sender, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(secrets.time, "monotonic", lambda: now[0])
    secrets.sender_secrets(sender)
    answers[sender] = ["whsec_two", "whsec_one"]

    now[0] += 10.5

    assert secrets.sender_secrets(sender) == ["whsec_two", "whsec_one"]
    assert calls == [sender, sender]


def test_zero_cache_time_asks_every_time(sender, settings):
    settings.NOTIFY_SECRET_CACHE_SECONDS = 0

    for _ in range(3):
        secrets.sender_secrets(sender)

    assert calls == [sender] * 3


def test_an_unknown_sender_raises_and_is_not_remembered(sender):
    unknown = f"unknown-{uuid.uuid4().hex}"
    for _ in range(2):
        with pytest.raises(KeyError):
            secrets.sender_secrets(unknown)

    assert calls == [unknown, unknown]
