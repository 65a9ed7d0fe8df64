"""The accounts app's Prometheus metrics: what became of the notifications its notify
endpoint received, and of the recharges reconciliation asked payments about.

- ``recharge_receipts_total{outcome, reason}``: ``outcome`` is an
  ``InboundNotification.Outcome`` (``applied``, ``duplicate``, ``rejected``) or ``refused``
  (a 4xx before anything was recorded), with ``reason`` saying why (``unverified``,
  ``not_json``, ``off_contract``, ``id_mismatch``, ``webhook_id_reused``, ``throttled``);
  ``reason`` is empty for the others.
- ``recharge_reconciliations_total{outcome}``: ``applied``, ``duplicate``, ``pending``,
  ``unreachable``, ``api_error``, ``mismatch`` (accounts/services.py).
"""

from prometheus_client import Counter

RECEIPTS = Counter(
    "recharge_receipts_total",
    "Notifications received at the notify endpoint, by outcome (refused: a 4xx) and reason.",
    ["outcome", "reason"],
)
RECONCILIATIONS = Counter(
    "recharge_reconciliations_total",
    "Recharges reconciled by querying payments, by outcome.",
    ["outcome"],
)


def receipt_observe(*, outcome: str, reason: str = "") -> None:
    """Count one notification received: its ``outcome`` and, when refused, the ``reason``."""
    RECEIPTS.labels(outcome, reason).inc()


def reconciliations_observe(counts: dict[str, int]) -> None:
    """Count reconciled recharges: ``{outcome: how many}``."""
    for outcome, count in counts.items():
        RECONCILIATIONS.labels(outcome).inc(count)
