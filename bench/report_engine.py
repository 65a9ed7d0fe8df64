"""The tables and targets of the delivery engine's scenarios (issue 10, "Measure"): slow
receivers, noisy neighbour, dead endpoint cost, and the pools side by side. ``bench.report``
puts them in the run's Markdown; every figure comes from ``results``."""

from .format import fmt, table_row
from .pools import pool_label

TARGETS = {
    "slow_vs_threads": 0.8,  # ours / thread pool with as many in flight, at least
    "slow_vs_peers": 1.0,  # ours / each peer, more than
    "noisy_p95_ms": 2000.0,  # healthy pay → received p95, at most
    "noisy_throughput": 0.8,  # healthy throughput / with no bad endpoint, at least
}
PEERS = {"django_webhook": "django-webhook", "signal_webhooks": "django-signal-webhooks"}


def slow_lines(slow: dict) -> list[str]:
    """The slow receivers' table: every contender's rate, and ours ÷ it."""
    best = slow["ours"].get(slow["best_pool"], {})
    lines = [
        f"**Slow receivers**, answering in {slow['delay_ms']} ms on {slow['origins']} origins "
        "(requests answered per second; ratio: ours on the pool where it was fastest, "
        f"{slow['best_pool']}, ÷ contender)",
        "",
        "| contender | in flight | notifications | rate | errors | ours ÷ it |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for pool, row in slow["ours"].items():
        lines.append(_slow_row(f"ours, {pool}", row, row.get("in_flight"), best))
    contenders = (
        ("threads", "plain thread pool, no Celery", "threads"),
        ("bare", f"bare Celery task, {slow['default_pool']}", None),
        ("django_webhook", f"django-webhook, {slow['default_pool']}", None),
        ("signal_webhooks", "django-signal-webhooks, a thread per save", "threads"),
    )
    for key, label, in_flight in contenders:
        row = slow[key]
        lines.append(_slow_row(label, row, row.get(in_flight) if in_flight else None, best))
    return [*lines, ""]


def _slow_row(label: str, row: dict, in_flight, ours: dict) -> str:
    if "rate" not in row:
        return table_row(label, fmt(in_flight), "—", "failed", "—", "—")
    ratio = ours["rate"] / row["rate"] if ours.get("rate") and row["rate"] else None
    cells = (fmt(row["n"]), fmt(row["rate"]), fmt(row["errors"]), fmt(ratio, 2))
    return table_row(label, fmt(in_flight), *cells)


def noisy_lines(noisy: dict) -> list[str]:
    """The noisy neighbour's table: the healthy endpoint's figures per case."""
    lines = [
        f"**Noisy neighbour** ({noisy['pool']}): the healthy endpoint while another has "
        f"{noisy['bad_n']:,} notifications due and hangs, or drips a byte every "
        f"{noisy['drip_interval']:g} s (burst: requests answered per second; paced orders: "
        "pay → received, ms)",
        "",
        "| bad endpoint | its requests in flight at start | healthy burst rate | ÷ none "
        "| orders paid/s | p50 | p95 | p99 | max | bad attempts, circuit at end |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for case, row in noisy["cases"].items():
        bad = row.get("bad", {})
        stream = row["stream"]
        latency = [fmt(stream[key]) for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        lines.append(
            table_row(
                case,
                fmt(bad.get("in_flight_at_start")),
                fmt(row["burst"]["rate"]),
                fmt(row.get("throughput_ratio"), 2),
                fmt(stream["rate_paid"]),
                *latency,
                f"{bad['attempts']:,}, {bad['circuit']}" if bad else "—",
            )
        )
    return [*lines, ""]


def dead_lines(dead: dict) -> list[str]:
    """The dead endpoint's table: worker CPU and attempts, per hour, per case."""
    idle = dead["idle"]
    window = idle["window_seconds"]
    lines = [
        f"**Dead endpoint cost** ({dead['pool']}): {dead['n']:,} notifications due to it, "
        f"retried every second; worker CPU over {window:g} s, per hour (net: less the idle "
        f"worker's {fmt(idle['worker_cpu_seconds_per_hour'])} s/h)",
        "",
        "| endpoint | circuit | attempts | attempts/h | worker CPU s | worker CPU s/h | net s/h |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for mode in ("refuse", "timeout"):
        for state, label in (("off", "held closed"), ("on", "defaults, open")):
            row = dead[mode][state]
            per_hour = row["worker_cpu_seconds_per_hour"]
            attempts = (fmt(row["attempts"]), fmt(row["attempts_per_hour"]))
            cpu = (fmt(row["worker_cpu_seconds"], 2), fmt(per_hour))
            net = fmt(per_hour - idle["worker_cpu_seconds_per_hour"])
            lines.append(table_row(mode, label, *attempts, *cpu, net))
    return [*lines, ""]


def pools_lines(results: dict) -> list[str]:
    """Ours on every pool, instant and slow receivers side by side."""
    configs = results.get("sender", {}).get("configs", [])
    sender = {pool_label(c): c for c in configs}
    slow = results.get("slow", {}).get("ours", {})
    pools = list(dict.fromkeys([*sender, *slow]))
    if not pools:
        return []
    lines = [
        "**Pools**, ours (notifications/s; instant receiver: ÷ the bare Celery task on the "
        "same pool; 250 ms receivers: ÷ the thread pool)",
        "",
        "| pool | instant | ÷ bare task | 250 ms | ÷ thread pool |",
        "|---|--:|--:|--:|--:|",
    ]
    threads = results.get("slow", {}).get("threads", {}).get("rate")
    for pool in pools:
        instant = sender.get(pool, {})
        rate = slow.get(pool, {}).get("rate")
        versus = rate / threads if rate and threads else None
        bare = fmt(instant.get("ratios", {}).get("bare"), 2)
        ours = fmt(instant.get("ours", {}).get("rate"))
        lines.append(table_row(pool, ours, bare, fmt(rate), fmt(versus, 2)))
    return [*lines, ""]


def evaluate(results: dict) -> list[dict]:
    """Target rows (``target``, ``value``, ``met``) of the slow and noisy scenarios."""
    rows = []
    slow = results.get("slow")
    if slow and slow["best_pool"]:
        best = slow["ratios"][slow["best_pool"]]
        value, floor = best["threads"], TARGETS["slow_vs_threads"]
        met = value is not None and value >= floor
        rows.append(_row(f"slow ours/thread pool ≥ {floor} ({slow['best_pool']})", value, met))
        for key, name in PEERS.items():
            value = best[key]
            met = value is not None and value > TARGETS["slow_vs_peers"]
            rows.append(_row(f"slow ahead of {name} (ours/peer > 1)", value, met))
    noisy = results.get("noisy")
    for case in ("hang", "drip") if noisy else ():
        row = noisy["cases"][case]
        p95, ratio = row["stream"]["p95_ms"], row.get("throughput_ratio")
        limit = TARGETS["noisy_p95_ms"]
        rows.append(_row(f"noisy {case}: healthy p95 ≤ {limit:.0f} ms", p95, p95 <= limit))
        floor = TARGETS["noisy_throughput"]
        met = ratio is not None and ratio >= floor
        rows.append(_row(f"noisy {case}: healthy throughput ÷ none ≥ {floor}", ratio, met))
    return rows


def _row(target: str, value, met: bool) -> dict:
    return {"target": target, "value": value, "met": met}
