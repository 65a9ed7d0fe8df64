"""The benchmark's fastest pieces at toy sizes, so `make test` keeps bench/ from rotting.

The real run is `make bench` (README "Performance"); these check that the scan-cost
measurement and the report writer still work against the current models and services, and
run the delivery engine's scenarios (slow receivers, noisy neighbour, dead endpoint) end to
end on their own stack at toy sizes.
"""

import json
import re
import subprocess
import sys
import time

import pytest
import responses

from bench import prune, report, scan
from bench.cpu import CpuMeter
from devstack.stack import ROOT
from payments.models import RechargeOrder
from payments.serializers import RechargeOrderOutputSerializer


@pytest.fixture
def payments_api(settings):
    """The payments query API answered from the test database, as the real one would."""
    settings.ACCOUNTS_PAYMENTS_API_URL = "http://payments.test"

    def order(request):
        tx_no = request.url.rstrip("/").rsplit("/", 1)[-1]
        found = RechargeOrder.objects.filter(tx_no=tx_no).first()
        if found is None:
            return 404, {}, "{}"
        return 200, {}, json.dumps(RechargeOrderOutputSerializer(found).data)

    with responses.RequestsMock() as mocked:
        mocked.add_callback(
            responses.GET, re.compile(r"http://payments\.test/api/payments/recharges/.+"), order
        )
        yield mocked


@pytest.mark.django_db
def test_scan_cost_runs_both_ticks_and_explains_their_queries(merchant, account, payments_api):
    """Bulk-loading 200 rows per table, the sweeper finds exactly the due notifications, the
    reconciliation asks about exactly the due recharges, and every query has a plan."""
    result = scan.run(merchant=merchant, account=account, sizes=[100, 200], due=5, ticks=1)

    assert [step["rows"]["notifications"] for step in result["steps"]] == [100, 200]
    last = result["steps"][-1]
    assert last["sweep_outcome"] == {"released": 0, "wakes": 1}
    assert last["reconcile_outcome"] == {"pending": 5}
    assert set(last["plans"]) == {"sweep: due", "sweep: orphaned", "reconcile: pending"}
    assert all(plan["plan"] for plan in last["plans"].values())
    assert result["ratios"]["sweep_tick"] > 0


@pytest.mark.django_db
def test_prune_cost_deletes_whole_batches_and_keeps_what_must_stay(merchant):
    """At toy sizes (100 then 1,000 prunable notifications, two attempts each) every batch
    deletes exactly its size with its attempts, every undelivered or recent row stays, the
    selection has an index plan, and the report shows the table and its targets."""
    result = prune.run(app_id=merchant.app_id, sizes=[100, 1000], batch_size=10, batches=2)

    first, last = result["steps"]
    assert first["rows"] == {"prunable": 100, "kept": 3, "attempts": 200}
    assert last["rows"] == {"prunable": 980, "kept": 30, "attempts": 1960}
    assert last["deleted"] == {"notifications": 20, "attempts": 40}
    assert result["full_batches"] and result["kept_survived"]
    assert result["plans_use_indexes"], last["plan"]["plan"]
    assert result["ratio"] > 0
    targets = report._prune_targets(result)
    assert [row["met"] for row in targets[1:]] == [True, True]
    assert "6. Prune cost" in "\n".join(report._prune_lines(result))


def test_report_writes_json_markdown_and_chart(tmp_path):
    """Given results shaped like a run's, the writer produces the three files and a table
    with every scenario and target."""
    cpu = {"driver": 0.5, "web": 1.25, "worker": 2.0, "postgres": 1.0, "total": 4.75}
    rate = {"n": 10, "seconds": 1.0, "fire_seconds": 0.1, "rate": 10.0, "errors": 0, "cpu_ms": cpu}
    samples = {"n": 3, "p50_ms": 2.0, "p95_ms": 3.0, "p99_ms": 3.0, "max_ms": 3.0}
    results = {
        "meta": {
            "timestamp": "2026-01-01T00:00:00Z",
            "seconds": 1.0,
            "machine": {"cpu": "test", "cores": 2, "memory_gib": 1.0},
            "database": "SQLite",
            "redis_version": "6",
            "load": {"start": (0.1, 0, 0), "end": (0.2, 0, 0), "max_1min": 0.3},
            "scenario_seconds": {"sender": 61.4, "receiver": 12.0},
        },
        "sender": {
            "n": 10,
            "configs": [
                {
                    "pool": "prefork",
                    "concurrency": 2,
                    **{name: dict(rate) for name in ("ours", "bare", "threads", "peer")},
                    "ratios": {"bare": 1.0, "threads": 1.0, "peer": 1.0},
                }
            ],
        },
        "receiver": {
            "n": 10,
            "clients": 2,
            **{name: dict(rate) for name in ("applied", "duplicates", "bare")},
            "ratios": {"applied": 1.0, "duplicates": 1.0},
            "correct": True,
        },
        "latency": {
            "ours": {**samples, "samples_ms": [1.0, 2.0, 3.0]},
            "floor": {**samples, "samples_ms": [0.5, 0.6, 0.7]},
        },
    }

    paths = report.write(results, tmp_path)

    assert {path.suffix for path in paths.values()} == {".json", ".md", ".png"}
    assert json.loads(paths["json"].read_text())["targets"]
    table = paths["md"].read_text()
    for heading in ("Sender throughput", "Receiver throughput", "Latency", "Targets"):
        assert heading in table
    assert "(sender 61 s; receiver 12 s)" in table
    assert "Where the CPU goes" in table
    assert (
        "| sender ours (prefork:2), per notification | 0.50 | 1.25 | 2.00 | — | — | 1.00 | — "
        in table
    )


class _NoStack:
    """A benchmark stack with nothing started: only this process is measured."""

    redis_process = None

    def process_tree(self, key):
        return []


def test_cpu_meter_attributes_this_process_cpu_to_the_driver():
    """CPU burnt inside the block is counted for the driver; ms per item divides by n."""
    with CpuMeter(_NoStack()) as meter:
        deadline = time.process_time() + 0.2
        while time.process_time() < deadline:
            pass

    assert 0.15 <= meter.seconds["driver"] < 2
    assert meter.per_item(100)["driver"] == pytest.approx(meter.seconds["driver"] * 10, abs=0.01)


# One pool, two origins, a few notifications each; a 2 s attempt deadline so the hanging
# endpoints' attempts end (and their circuits open) within the test.
TINY_ENGINE_RUN = (
    "--only slow,noisy,dead --pools prefork:2 --origins 2 --slow-n 40 --slow-celery-n 8 "
    "--slow-signal-n 8 --signal-threads 8 --noisy-n 10 --noisy-burst 20 --noisy-bad-n 40 "
    "--drip-interval 0.5 --dead-n 40 --dead-window 1 --dead-warmup 0.5 "
    "--set NOTIFY_ATTEMPT_DEADLINE=2"
)


@pytest.mark.e2e
def test_engine_scenarios_run_end_to_end_at_tiny_sizes(tmp_path):
    """``python -m bench`` runs slow, noisy and dead on a stack of its own and reports each
    table, every contender answered, and a verdict for each of their targets."""
    command = [sys.executable, "-m", "bench", *TINY_ENGINE_RUN.split(), "--results", tmp_path]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)

    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(next(tmp_path.glob("*.json")).read_text())
    slow = results["slow"]
    for name in ("threads", "bare", "django_webhook", "signal_webhooks"):
        assert slow[name]["answered"] == slow[name]["n"], name
    assert slow["ours"]["prefork:2"]["answered"] == 40
    assert results["noisy"]["cases"]["hang"]["bad"]["in_flight_at_start"] > 0
    assert results["dead"]["refuse"]["on"]["circuit_at_end"] == "open"
    assert results["dead"]["refuse"]["off"]["attempts"] > 0
    targets = {row["target"]: row["met"] for row in results["targets"]}
    assert len([t for t in targets if t.startswith(("slow ", "noisy "))]) == 7
    table = next(tmp_path.glob("*.md")).read_text()
    for heading in ("Slow receivers", "Noisy neighbour", "Dead endpoint cost", "Pools"):
        assert heading in table
