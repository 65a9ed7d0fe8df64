"""Scenario 4: the receiver refuses connections, stalls, answers 500, then recovers."""

import time
from collections import Counter

from devstack.shoppers import plan_orders

from ..figures import at
from ..harness import DRIVE_TIMEOUT, JITTER, LADDER, ChaosRun, Scenario


def receiver_faults(run: ChaosRun) -> None:
    """4. The receiver proxy refuses connections, then answers past the attempt deadline,
    then answers 500, for a stretch of the compressed schedule each, then recovers. The
    circuit breaker opens during the faults; its probes find the receiver back."""
    from notifications.models import DeliveryAttempt, Endpoint

    sizes = run.sizes
    deadline = float(run.env["NOTIFY_ATTEMPT_DEADLINE"])
    run.receiver.slow_seconds = deadline + 1.0
    run.receiver.set_mode("refuse")
    began = time.time()
    run.start("web", "payments", "worker", "beat")
    state = run.drive(plan_orders(sizes.orders, seed=5)).wait(timeout=DRIVE_TIMEOUT)
    time.sleep(sizes.phase)
    phases = [("refused", began, time.time())]
    for mode, label in (("slow", "slow"), ("error", "500")):
        run.receiver.set_mode(mode)
        start = time.time()
        time.sleep(sizes.phase)
        phases.append((label, start, time.time()))
    run.receiver.set_mode("forward")
    run.end_fault()
    run.say("receiver recovered")
    run.settle()
    fault_span = (at(began), at(phases[-1][2] + deadline + 1))
    forced = DeliveryAttempt.objects.filter(succeeded=False, started_at__range=fault_span).count()
    run.figures(forced=forced)
    run.check_drive(state)
    by_phase = Counter()
    for attempt in DeliveryAttempt.objects.filter(succeeded=False).only("started_at"):
        ts = attempt.started_at.timestamp()
        label = next((name for name, a, b in phases if a <= ts < b), "after")
        by_phase[label] += 1
    worker_log = (run.log_dir / "worker.log").read_text(errors="replace")
    run.check(
        "the circuit opened during the faults and is closed again",
        "circuit closed → open" in worker_log
        and set(Endpoint.objects.values_list("state", flat=True)) == {Endpoint.State.CLOSED},
        f"opened {worker_log.count('circuit closed → open')} time(s)",
    )
    early, lateness, gaps = _schedule_kept()
    run.check(
        "no retry earlier than its step of the schedule",
        early == 0,
        f"{gaps} gaps checked, {early} early",
    )
    late = sorted(lateness)
    injected = run.receiver.injected()
    run.note(
        "failed attempts by phase: "
        + ", ".join(f"{name} {by_phase[name]}" for name, _, _ in phases)
        + f" (the proxy held {injected['slow']} and answered 500 to {injected['error']})"
        + f"; retry gaps vs schedule: {gaps} checked, none early, lateness median "
        f"{late[len(late) // 2] if late else 0:.1f}s, max {late[-1] if late else 0:.1f}s "
        "(a saturated worker runs late, never early)"
    )


def _schedule_kept() -> tuple[int, list, int]:
    """(early, lateness in seconds, gaps checked) over every pair of consecutive attempts:
    attempt n+1 must start no sooner than attempt n's end plus step n less the jitter."""
    from notifications.models import DeliveryAttempt

    attempts: dict = {}
    for row in DeliveryAttempt.objects.values(
        "notification_id", "number", "started_at", "duration_ms"
    ).order_by("notification_id", "number"):
        attempts.setdefault(row["notification_id"], []).append(row)
    early, lateness, gaps = 0, [], 0
    for rows in attempts.values():
        for before, after in zip(rows, rows[1:], strict=False):
            step = LADDER[before["number"] - 1]
            ended = before["started_at"].timestamp() + before["duration_ms"] / 1000
            gap = after["started_at"].timestamp() - ended
            gaps += 1
            if gap < step * (1 - JITTER) - 0.05:
                early += 1
            lateness.append(max(0.0, gap - step * (1 + JITTER)))
    return early, lateness, gaps


SCENARIOS = [Scenario("4", "receiver refuses, stalls, answers 500, recovers", receiver_faults)]
