"""Another merchant besides accounts, for the scenarios where one endpoint misbehaves while
another is served: onboarded in this process (``merchant_create``, allowed host 127.0.0.1),
its orders created through the merchant API (the payments gunicorn) with its Bearer key and
paid at the cashier (the public one), its notify_url on a fault proxy of its own.

That proxy has no upstream and acknowledges every notification itself (``drop`` 1.0) unless
the scenario switches it to a fault mode, so this merchant's "lost" is a notification never
acknowledged. accounts never sees its orders: the run's audit compares accounts' own
(``Run.accounts_merchant``, set by ``other_merchant_onboard``).
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from devstack.browser import Browser, DriveError
from devstack.proxy import FaultProxy

HTTP_TIMEOUT = 30  # seconds per request to the stack


@dataclass(frozen=True)
class OtherMerchant:
    """A merchant of the run's payments that is not accounts; ``proxy`` is its receiver."""

    app_id: str
    api_key: str
    proxy: FaultProxy
    # The run's merchant API (its payments gunicorn): the web gunicorn answers 404 there.
    api_url: str

    @property
    def origin(self) -> str:
        """Its endpoint's origin, as the notifications app writes it."""
        return self.proxy.url


def other_merchant_onboard(run, *, name: str, proxy: FaultProxy) -> OtherMerchant:
    """Onboard ``name`` with ``proxy`` (acknowledging: ``drop`` 1.0) as its receiver, and
    make the run's audit compare accounts' orders alone."""
    from payments.models import Merchant
    from payments.services import merchant_create

    run.accounts_merchant = Merchant.objects.get().pk  # the template's one merchant
    proxy.drop = 1.0
    credentials = merchant_create(name=name, allowed_hosts=["127.0.0.1"])
    return OtherMerchant(
        credentials.merchant.app_id, credentials.api_key, proxy, run.stack.payments_url
    )


def paid_orders(merchant: OtherMerchant, *, base_url: str, count: int, prefix: str) -> list:
    """Create ``count`` orders through the merchant's API URL and pay each at the cashier
    (the URL payments hands out, on the public site; ``base_url`` is that site's), four at a
    time; their tx_nos. Raises DriveError."""
    numbers = [f"{prefix}-{number}" for number in range(count)]
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="merchant") as pool:
        return list(pool.map(lambda number: _paid_order(merchant, base_url, number), numbers))


def undelivered(merchant: OtherMerchant) -> int:
    """The merchant's notifications its receiver has not acknowledged."""
    from notifications.models import Notification

    return (
        Notification.objects.filter(sender_key=merchant.app_id)
        .exclude(state=Notification.State.DELIVERED)
        .count()
    )


def _paid_order(merchant: OtherMerchant, base_url: str, out_trade_no: str) -> str:
    """One order created with the API (201) and paid at its cashier page; its tx_no."""
    order = {
        "out_trade_no": out_trade_no,
        "account_no": "AC-OTHER-MERCHANT",
        "amount": 100,
        "currency": "CNY",
        "notify_url": f"{merchant.proxy.url}/notify",
        "return_url": f"{merchant.proxy.url}/done",
    }
    with requests.Session() as http:
        http.trust_env = False  # loopback only: no proxy from the environment
        try:
            response = http.post(
                f"{merchant.api_url}/api/payments/recharges/",
                json=order,
                headers={"Authorization": f"Bearer {merchant.api_key}", "Connection": "close"},
                timeout=HTTP_TIMEOUT,
            )
        except requests.RequestException as exc:
            raise DriveError(f"create {out_trade_no}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 201:
        excerpt = response.text[:200]
        raise DriveError(f"create {out_trade_no}: HTTP {response.status_code} {excerpt}")
    created = response.json()
    cashier = Browser(base_url=base_url, username="", password="", timeout=HTTP_TIMEOUT)
    cashier.request("GET", created["cashier_url"], expect=200, step="GET cashier")
    cashier.finish(created["cashier_url"], "pay")
    return created["tx_no"]
