"""The ``make chaos`` scenarios, at small sizes, inside ``make test``.

One ``python -m chaos --small`` run serves the whole session: it runs the scenarios of the
tests selected here (all of them by default), each against the real stack (gunicorn, Celery
worker and beat, its own Redis; the RabbitMQ of ``CELERY_BROKER_URL`` as the broker when
it names one) in a database of its own on the server ``DATABASE_URL`` names (SQLite files
under var/chaos otherwise), and writes its outcomes as JSON. Each test then pins one
scenario's verdict: nothing lost, nothing credited twice, the audit clean, the scenario's
own checks passed; a Redis-only fault on RabbitMQ, or a RabbitMQ-only one (2c, 2d, 5b) on
Redis, is skipped with the run's reason, and the network scenarios (13-18, 20, 21: a
simulated cluster in network namespaces, its own PostgreSQL and Redis, and on RabbitMQ a
RabbitMQ node of its own as the broker) with the reason where namespaces are not available
(not root, no ``ip``, no rabbitmq-server). A failure shows the run's table and details (logs
under var/chaos/logs/<scenario>/).
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devstack.database import POSTGRES_SCHEMES
from devstack.processes import ROOT

pytestmark = pytest.mark.chaos

RUN_TIMEOUT = 1800  # seconds for the whole small run (22 scenarios, 9 on the cluster): bounded
SCENARIO_OF = {
    "test_worker_sigkilled_mid_delivery": "1",
    "test_redis_flushed_mid_run": "2a",
    "test_redis_restarted_empty": "2b",
    "test_rabbitmq_queues_purged_mid_run": "2c",
    "test_rabbitmq_closes_the_stacks_connections": "2d",
    "test_process_dies_between_commit_and_enqueue": "3",
    "test_receiver_refuses_stalls_fails_then_recovers": "4",
    "test_broker_redelivery_and_duplicates_make_no_second_request": "5",
    "test_rabbitmq_redelivers_a_killed_workers_messages": "5b",
    "test_two_beats_apply_nothing_twice": "6",
    "test_concurrent_duplicates_credit_once": "7",
    "test_reconciliation_survives_restart_and_api_outage": "8",
    "test_noisy_neighbour_delays_no_other_merchant": "9",
    "test_circuit_opens_half_opens_and_closes": "10",
    "test_endpoint_disabled_then_recovered_since_a_time": "11",
    "test_worker_sigkilled_with_a_batch_in_flight": "12",
    "test_worker_host_partitioned_from_the_database": "13",
    "test_broker_host_broker_restarted": "14",
    "test_postgres_restarted_mid_run": "15",
    "test_worker_host_clock_three_minutes_ahead": "16",
    "test_worker_host_partitioned_from_the_broker": "17",
    "test_worker_host_partitioned_from_the_receiver": "18",
    "test_queue_transport_survives_subscriber_and_worker_kills": "19",
    "test_web_host_partitioned_from_the_database": "20",
    "test_beat_host_partitioned_from_the_broker": "21",
}


def chaos_database_name() -> str:
    """A database name of its own, so a concurrent ``make chaos`` is left alone."""
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url)
    if parts.scheme in POSTGRES_SCHEMES:
        base = parts.path.lstrip("/") or "postgres"
    else:
        base = Path(parts.path or "db.sqlite3").stem
    return f"chaos_{base}"


@pytest.fixture(scope="session")
def chaos_run(request, tmp_path_factory) -> dict:
    """Run the selected scenarios once: ``{"output": str, "outcomes": {key: dict}}``."""
    keys = sorted(
        {
            SCENARIO_OF[item.originalname]
            for item in request.session.items
            if item.originalname in SCENARIO_OF
        },
        key=list(SCENARIO_OF.values()).index,
    )
    out = tmp_path_factory.mktemp("chaos") / "outcomes.json"
    command = [
        sys.executable,
        "-m",
        "chaos",
        "--small",
        "--only",
        ",".join(keys),
        "--database",
        chaos_database_name(),
        "--json",
        str(out),
    ]
    try:
        finished = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"python -m chaos --small did not finish within {RUN_TIMEOUT}s: {exc}")
    output = finished.stdout + "\n--- stderr ---\n" + finished.stderr[-20000:]
    if not out.exists():
        pytest.fail(f"python -m chaos wrote no outcomes (exit {finished.returncode}):\n{output}")
    outcomes = {o["key"]: o for o in json.loads(out.read_text())["outcomes"]}
    return {"output": output, "outcomes": outcomes}


def assert_scenario(chaos_run: dict, key: str, *, other_notifications: int = 0) -> dict:
    """The scenario ran, lost nothing, credited nothing twice, settled with a clean audit and
    passed its own checks, with one notification per order besides ``other_notifications``
    (operational ones); returns its outcome. Skips the test when the run skipped the
    scenario (a Redis-only fault on RabbitMQ, a RabbitMQ-only one on Redis)."""
    outcome = chaos_run["outcomes"].get(key)
    assert outcome is not None, chaos_run["output"]
    assert outcome["error"] is None, chaos_run["output"]
    if outcome["skipped"]:
        pytest.skip(outcome["skipped"])
    failed = [c for c in outcome["checks"] if not c["ok"]]
    summary = (
        f"scenario {key}: lost {outcome['lost']}, credited twice {outcome['credited_twice']}, "
        f"settled after {outcome['settle_seconds']}, error {outcome['error']}, failed checks "
        f"{failed}, audit {outcome['problems'][:5]}\n\n{chaos_run['output']}"
    )
    assert outcome["error"] is None, summary
    assert outcome["lost"] == 0, summary
    assert outcome["credited_twice"] == 0, summary
    assert outcome["settle_seconds"] is not None, summary
    assert outcome["problems"] == [], summary
    assert failed == [], summary
    assert outcome["ok"], summary
    assert outcome["notifications"] - other_notifications == outcome["orders"] > 0, summary
    return outcome


def test_worker_sigkilled_mid_delivery(chaos_run):
    """1. The worker's whole process group is SIGKILLed twice with attempts in flight, then a
    new one starts: every notification is delivered, and the only attempts beyond one per
    notification are those the kills abandoned (released by the sweeper, made again)."""
    outcome = assert_scenario(chaos_run, "1")
    assert outcome["beyond"] >= 0


def test_redis_flushed_mid_run(chaos_run):
    """2a. FLUSHALL at half-way and after the last order drops queued and unacknowledged
    wake-ups: the sweeper wakes workers for every due row, nothing is lost and no attempt is
    made beyond what the receiver's refusals forced."""
    outcome = assert_scenario(chaos_run, "2a")
    assert outcome["beyond"] == 0


def test_redis_restarted_empty(chaos_run):
    """2b. Redis is stopped while orders are paid (the payment pages still answer: the failed
    enqueue is logged, not raised) and started again empty: the worker reconnects, the
    outbox rows are swept onto the new queue and every notification is delivered once."""
    outcome = assert_scenario(chaos_run, "2b")
    assert outcome["beyond"] == 0


def test_rabbitmq_queues_purged_mid_run(chaos_run):
    """2c. On RabbitMQ, the namespace's queues are purged at half-way and after the last
    order, each time after the worker stopped consuming for a tenth of the orders: the
    purges removed messages, the sweeper wakes workers for every due row, nothing is lost
    and no attempt is made beyond what the receiver's refusals forced."""
    outcome = assert_scenario(chaos_run, "2c")
    assert check_passed(outcome, "the purges removed messages (the fault happened)")
    assert outcome["beyond"] == 0


def test_rabbitmq_closes_the_stacks_connections(chaos_run):
    """2d. On RabbitMQ, the broker closes every connection of the stack's processes, again
    and again for the outage, while orders are paid: the worker, beat and web had
    connections closed and hold new ones afterwards, the orders paid meanwhile are
    delivered, nothing is lost and no attempt is made twice."""
    outcome = assert_scenario(chaos_run, "2d")
    assert check_passed(
        outcome, "RabbitMQ closed connections of the worker, beat and web (the fault happened)"
    )
    assert outcome["beyond"] == 0


def test_process_dies_between_commit_and_enqueue(chaos_run):
    """3. Processes paying orders are SIGKILLed by an on-commit hook that runs before the
    enqueue hooks: nothing reaches the broker, yet every notification is delivered once the
    sweeper wakes a worker for it."""
    outcome = assert_scenario(chaos_run, "3")
    assert outcome["beyond"] == 0


def test_receiver_refuses_stalls_fails_then_recovers(chaos_run):
    """4. The receiver refuses connections, then stalls past the attempt deadline, then
    answers 500, then recovers: everything is delivered (the circuit breaker opened and its
    probe closed it again), no retry comes earlier than its step of the schedule, and every
    failed attempt falls in a fault phase."""
    outcome = assert_scenario(chaos_run, "4")
    assert outcome["beyond"] == 0


def test_broker_redelivery_and_duplicates_make_no_second_request(chaos_run):
    """5. With a 2 s visibility timeout the broker redelivers the messages a frozen worker
    had reserved, and every notification's wake-up is also published twice more by hand:
    the receiver sees each claimed attempt once (one a freeze made time out, at most once),
    and the only attempts beyond the minimum are those timeouts."""
    outcome = assert_scenario(chaos_run, "5")
    assert outcome["beyond"] == 0


def test_rabbitmq_redelivers_a_killed_workers_messages(chaos_run):
    """5b. On RabbitMQ, a worker frozen while it holds unacknowledged messages is SIGKILLed
    and the broker hands them at once to the other worker, while every wake-up is also
    duplicated by hand: the receiver sees each claimed attempt once (an abandoned one at
    most once) and the only attempts beyond the minimum are those the kills abandoned."""
    outcome = assert_scenario(chaos_run, "5b")
    assert check_passed(
        outcome, "the killed worker held unacknowledged messages (the fault happened)"
    )
    assert check_passed(outcome, "RabbitMQ redelivered messages a killed worker had received")


def test_two_beats_apply_nothing_twice(chaos_run):
    """6. Two beats send every sweep, expiry and reconciliation tick twice while first
    deliveries are refused, notifications dropped and orders left to expire: every result is
    applied once and no attempt is made twice."""
    outcome = assert_scenario(chaos_run, "6")
    assert outcome["beyond"] == 0


def test_concurrent_duplicates_credit_once(chaos_run):
    """7. Each notification is POSTed 50 times at once while two reconciliations apply the
    same result: every response is 2xx, each result is applied exactly once, one ledger
    entry per succeeded order (on PostgreSQL when DATABASE_URL names it; SQLite otherwise)."""
    assert_scenario(chaos_run, "7")


def test_reconciliation_survives_restart_and_api_outage(chaos_run):
    """8. Every notification is dropped, so only reconciliation can close the recharges; the
    accounts side is SIGKILLed and restarted mid-way, then the payments API is unreachable
    for a while: reconciliation resumes and closes every recharge, once."""
    assert_scenario(chaos_run, "8")


def test_noisy_neighbour_delays_no_other_merchant(chaos_run):
    """9. Another merchant's endpoint hangs, then drips, holding its cap of requests in
    flight (its circuit kept closed) with its notifications due: accounts' notifications
    still arrive within the bound (commit → receipt p95 ≤ 1 s, none as late as one attempt
    deadline), and once the neighbour recovers every one of its notifications is
    acknowledged, each claimed attempt sent once."""
    outcome = assert_scenario(chaos_run, "9")
    assert outcome["beyond"] == 0


def test_circuit_opens_half_opens_and_closes(chaos_run):
    """10. A receiver answering 500 opens the circuit; while open it sees nothing but one
    probe per wait, each failed probe doubling the wait up to NOTIFY_CIRCUIT_OPEN_MAX; once
    it recovers the next probe closes the circuit and everything waiting is delivered."""
    outcome = assert_scenario(chaos_run, "10")
    assert outcome["beyond"] == 0


def test_endpoint_disabled_then_recovered_since_a_time(chaos_run):
    """11. A receiver failing for NOTIFY_ENDPOINT_DISABLE_AFTER is disabled: staff are mailed
    and shown a banner, the merchant's ops URL gets one endpoint.disabled notification, and
    nothing is sent to it though orders are paid; endpoint_recover --since then resends
    what it had not acknowledged and everything is delivered."""
    outcome = assert_scenario(chaos_run, "11", other_notifications=1)
    assert outcome["beyond"] == 0


def test_worker_sigkilled_with_a_batch_in_flight(chaos_run):
    """12. The worker's whole process group is SIGKILLed with a batch of requests in flight
    at a slow receiver, twice: the sweeper releases the dead claims, every notification is
    delivered, the receiver saw each claimed attempt at most once, and the only extra
    attempts are the abandoned ones."""
    outcome = assert_scenario(chaos_run, "12")
    assert outcome["beyond"] > 0


def check_passed(outcome: dict, name: str) -> bool:
    """Whether the scenario's own check ``name`` ran and passed."""
    return [c["ok"] for c in outcome["checks"] if c["name"] == name] == [True]


def test_worker_host_partitioned_from_the_database(chaos_run):
    """13. worker1's packets to the database host vanish for the outage with deliveries in
    flight (a task of its held across the partition): worker2 and the sweeper carry on and
    every notification is credited once. A claim worker1 held past NOTIFY_CLAIM_TIMEOUT is
    released and made again by worker2 (at least once: the full run shows some), and the
    receiver still saw each claimed attempt at most once."""
    outcome = assert_scenario(chaos_run, "13")
    assert check_passed(outcome, "the partition held a task on worker1"), outcome["checks"]


def test_broker_host_broker_restarted(chaos_run):
    """14. The broker host's broker is SIGKILLed mid-run (both workers lose their connection)
    and started again: Redis empty, what it held gone; a RabbitMQ node on its data directory,
    a quorum queue's confirmed messages kept (checked by the scenario). Every notification
    is delivered (the sweeper re-sends due rows), none twice."""
    outcome = assert_scenario(chaos_run, "14")
    assert check_passed(outcome, "both workers lost their broker connection"), outcome["checks"]
    assert outcome["beyond"] == 0


def test_postgres_restarted_mid_run(chaos_run):
    """15. PostgreSQL on the db host restarts (every connection cut) while orders are paid:
    the attempts that failed meanwhile are retried, nothing is lost or credited twice and
    no notification is delivered twice."""
    outcome = assert_scenario(chaos_run, "15")
    assert outcome["beyond"] == 0


def test_worker_host_clock_three_minutes_ahead(chaos_run):
    """16. worker2's clock runs three minutes ahead (libfaketime): its signatures are
    accepted, and since claims and schedules use the database's clock no claim of worker1 is
    released early: exactly one attempt per notification."""
    outcome = assert_scenario(chaos_run, "16")
    assert check_passed(outcome, "worker2's clock was skewed"), outcome["checks"]
    assert outcome["attempts"] == outcome["notifications"]


def test_worker_host_partitioned_from_the_broker(chaos_run):
    """17. worker1 cannot reach the broker for the outage, with deliveries in flight: it takes
    no more than its prefetch meanwhile and worker2 the new messages; every notification is
    delivered, none twice."""
    outcome = assert_scenario(chaos_run, "17")
    name = "worker1 took no more than its prefetch while cut off, the other worker the rest"
    assert check_passed(outcome, name), outcome["checks"]
    assert outcome["beyond"] == 0


def test_worker_host_partitioned_from_the_receiver(chaos_run):
    """18. worker1 cannot reach the receiver: its attempts time out and are retried on the
    schedule; no notification is delivered twice (the only attempts beyond one each are the
    failed ones)."""
    outcome = assert_scenario(chaos_run, "18")
    assert check_passed(outcome, "attempts from worker1 failed while cut off")
    assert outcome["beyond"] == 0


def test_queue_transport_survives_subscriber_and_worker_kills(chaos_run):
    """19. Scheme 1, accounts consuming its queue with two subscribers: one SIGKILLed holding
    a message, which the broker hands to the other; both down for the outage, the
    notifications published again meanwhile; the worker SIGKILLed with publications awaiting
    acknowledgement, whose acknowledgements the new worker records. Each credited once."""
    outcome = assert_scenario(chaos_run, "19")
    for name in (
        "the SIGKILLed subscriber held messages, each handed to the other subscriber",
        "publications made again while no subscriber ran",
        "the new worker recorded acknowledgements of publications made before the kill",
    ):
        assert check_passed(outcome, name), outcome["checks"]


def test_web_host_partitioned_from_the_database(chaos_run):
    """20. The web host (pages, the payments API, accounts' notify API) cannot reach the
    database: a page request in flight is held until the heal, the page answers again soon
    after it (no gunicorn thread stuck for good), attempts that timed out meanwhile are
    retried; nothing is lost or credited twice, and orders whose pages failed expire."""
    outcome = assert_scenario(chaos_run, "20")
    assert check_passed(
        outcome, "a page request in flight during the cut was held until the heal or failed"
    ), outcome["checks"]
    assert outcome["beyond"] == 0


def test_beat_host_partitioned_from_the_broker(chaos_run):
    """21. beat cannot reach the broker for many sweep intervals: deliveries go on without it
    (orders paid during the cut are notified before the heal), the unpaid orders that came
    due meanwhile are expired only once beat's sends get through again, and then all."""
    outcome = assert_scenario(chaos_run, "21")
    assert check_passed(
        outcome, "orders came due while beat was cut off, none expired before the heal"
    ), outcome["checks"]
    assert outcome["beyond"] == 0
