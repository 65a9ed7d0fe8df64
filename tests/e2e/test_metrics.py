"""``/metrics`` on the real stack: counters written in one process are read through another.

The delivery is recorded in a Celery pool process and the receipt in a web gunicorn worker;
a scrape of either gunicorn (any of its workers) sums every process's counters, which is
what prometheus_client's multiprocess mode over the stack's PROMETHEUS_MULTIPROC_DIR is for.
"""

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_recharge_flow import HTTP_TIMEOUT, top_up_and_pay, wait_for_credit

TOKEN = "e2e-metrics-token-0123456789abcdef"


def scrape(url: str) -> dict:
    """``{(sample name, frozenset(labels)): value}`` from ``url``/metrics with the token."""
    response = requests.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text[:500]
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.mark.e2e
def test_a_paid_order_is_counted_across_processes(start_stack, customer):
    """After a paid order is credited, both gunicorns' /metrics count its delivery (recorded
    by the worker: 2xx, one duration observed) and its receipt (applied, by the web
    process); the broker and the database gauges are up. Without the token: 401."""
    stack = start_stack(METRICS_TOKEN=TOKEN)
    recharge = top_up_and_pay(stack, customer)
    wait_for_credit(recharge, stack)

    for url in (stack.web_url, stack.payments_url):
        samples = scrape(url)
        delivered = (
            "notifications_attempts_total",
            frozenset({"outcome": "delivered", "kind": "2xx"}.items()),
        )
        assert samples.get(delivered) == 1, url
        assert samples.get(("notifications_attempt_duration_seconds_count", frozenset())) == 1
        applied = (
            "recharge_receipts_total",
            frozenset({"outcome": "applied", "reason": ""}.items()),
        )
        assert samples.get(applied) == 1, url
        assert samples.get(("recharge_broker_up", frozenset())) == 1
        assert samples.get(("notifications_database_up", frozenset())) == 1
    assert requests.get(f"{stack.web_url}/metrics", timeout=HTTP_TIMEOUT).status_code == 401
