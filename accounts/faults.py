"""Fault injection for `make demo` and the end-to-end tests; off unless its settings are set.

Which notification is hit is a pure function of its webhook-id, so a run is reproducible and
every process (several gunicorn workers) agrees without sharing state.
"""

import hashlib

from django.conf import settings


def _share(webhook_id: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{webhook_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def should_refuse(*, webhook_id: str, deliveries: int) -> bool:
    """Answer 503 to the first delivery of ``ACCOUNTS_FAULT_REFUSE_FIRST`` of notifications."""
    return deliveries == 1 and _share(webhook_id, "refuse") < settings.ACCOUNTS_FAULT_REFUSE_FIRST


def should_drop(*, webhook_id: str) -> bool:
    """Acknowledge but ignore ``ACCOUNTS_FAULT_DROP`` of notifications (lost in transit)."""
    return _share(webhook_id, "drop") < settings.ACCOUNTS_FAULT_DROP
