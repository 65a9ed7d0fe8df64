"""The payments merchant API as accounts reaches it: over HTTP, like any other merchant."""

import requests
from django.conf import settings


class PaymentsApiError(Exception):
    """The payments API could not be reached or refused the call.

    ``status_code`` is None when no response came back (refused, timeout)."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class PaymentsClient:
    """``POST /api/payments/recharges/`` and ``GET /api/payments/recharges/{tx_no}/``.

    Orders come back as dicts in the shape of payments' merchant API (docs/notifications.md,
    "The query interface"; amount in minor units). One instance keeps one connection pool;
    create one per request or batch.
    """

    def __init__(self, *, base_url: str, api_key: str, timeout: float):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    @classmethod
    def from_settings(cls) -> "PaymentsClient":
        return cls(
            base_url=settings.ACCOUNTS_PAYMENTS_API_URL,
            api_key=settings.ACCOUNTS_PAYMENTS_API_KEY,
            timeout=settings.ACCOUNTS_API_TIMEOUT,
        )

    def recharge_create(self, **order) -> dict:
        """Create (or, for a known out_trade_no, fetch) an order. Raises PaymentsApiError."""
        return self._call("POST", "/api/payments/recharges/", json=order)

    def recharge_get(self, *, tx_no: str) -> dict:
        """The order as payments has it now. Raises PaymentsApiError."""
        return self._call("GET", f"/api/payments/recharges/{tx_no}/")

    def _call(self, method: str, path: str, json: dict | None = None) -> dict:
        try:
            response = self.session.request(
                method, self.base_url + path, json=json, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise PaymentsApiError(f"payments API unreachable: {type(exc).__name__}") from exc
        if response.status_code not in (200, 201):
            raise PaymentsApiError(
                f"payments API answered {response.status_code}: {response.text[:200]}",
                response.status_code,
            )
        return response.json()
