"""What ``config.settings.production`` refuses to start with: development values in any
spelling, and settings that switch a protection off. A pure function of the settings' values,
so each refusal is testable; ``production`` raises ImproperlyConfigured listing them all."""

import base64
import binascii

from django.core.exceptions import ImproperlyConfigured

# A random 50-character key has some 35 different characters; one repeating a few is typed.
MIN_SECRET_KEY_LENGTH, MIN_SECRET_KEY_CHARACTERS = 50, 20
# A bearer token a scraper sends: long enough not to be guessed (e.g. `openssl rand -hex 24`).
MIN_METRICS_TOKEN_LENGTH = 32


def webhook_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for, however it is written: with or without
    the prefix, with or without base64 padding (Standard Webhooks signs with these bytes)."""
    text = secret.strip().removeprefix("whsec_")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return text.encode()


def production_refusals(values: dict, *, dev: dict, network_refusal) -> list[str]:
    """Every problem with ``values`` (the settings, by name) for production. ``dev`` holds the
    development defaults (``SECRET_KEY``, ``API_KEY``, ``WEBHOOK_SECRET``); ``network_refusal``
    is the SSRF guard's judge of an allow-list entry (notifications.netguard)."""
    problems = []
    if values["DEBUG"]:
        problems.append("DEBUG is on (DJANGO_DEBUG)")
    key = values["SECRET_KEY"]
    if (
        key == dev["SECRET_KEY"]
        or key.startswith("django-insecure")
        or (len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < MIN_SECRET_KEY_CHARACTERS)
    ):
        problems.append(
            "DJANGO_SECRET_KEY is the development key or too short or too repetitive "
            f"({MIN_SECRET_KEY_LENGTH}+ random characters)"
        )
    if "*" in values["ALLOWED_HOSTS"]:
        problems.append("DJANGO_ALLOWED_HOSTS contains '*': name the hosts that serve this")
    if values["ACCOUNTS_PAYMENTS_API_KEY"].strip() == dev["API_KEY"]:
        problems.append("ACCOUNTS_PAYMENTS_API_KEY is the development demo key")
    problems += _webhook_secret_problems(values["ACCOUNTS_WEBHOOK_SECRETS"], dev["WEBHOOK_SECRET"])
    for name in (
        "PAYMENTS_CREATE_THROTTLE_RATE",
        "ACCOUNTS_NOTIFY_THROTTLE_RATE",
        "ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE",
        "ACCOUNTS_RECHARGE_USER_RATE",
    ):
        problems += _rate_problems(name, values[name])
    if values["ACCOUNTS_RECHARGE_PENDING_MAX"] < 1:
        problems.append("ACCOUNTS_RECHARGE_PENDING_MAX is below 1: every recharge would be refused")
    for cidr in values["NOTIFY_ALLOWED_NETWORKS"]:
        reason = network_refusal(cidr)
        if reason:
            problems.append(
                f"NOTIFY_ALLOWED_NETWORKS: {reason}; notifications to internal addresses are "
                "for development only"
            )
    if len(values["METRICS_TOKEN"].strip()) < MIN_METRICS_TOKEN_LENGTH:
        problems.append(
            f"METRICS_TOKEN is empty or shorter than {MIN_METRICS_TOKEN_LENGTH} characters: "
            "/metrics would be open to whoever reaches a gunicorn"
        )
    return problems


def refuse(problems: list[str]) -> None:
    """Raise ImproperlyConfigured naming every problem, if there are any."""
    if problems:
        raise ImproperlyConfigured(
            "config.settings.production refuses to start: " + "; ".join(problems)
        )


def _webhook_secret_problems(secrets: list[str], dev_secret: str) -> list[str]:
    if not [secret for secret in secrets if secret.strip()]:
        return ["ACCOUNTS_WEBHOOK_SECRETS is empty: no notification could be verified"]
    if any(webhook_key(secret) == webhook_key(dev_secret) for secret in secrets):
        return ["ACCOUNTS_WEBHOOK_SECRETS contains the development demo secret"]
    return []


def _rate_problems(name: str, rate: str | None) -> list[str]:
    if not rate:
        return [f"{name} is empty: the throttle would be off"]
    count, _, period = rate.partition("/")  # as DRF's SimpleRateThrottle.parse_rate reads it
    if not (count.isdigit() and int(count) > 0 and period[:1] in ("s", "m", "h", "d")):
        return [f"{name} {rate!r} is not a rate such as 600/min"]
    return []
