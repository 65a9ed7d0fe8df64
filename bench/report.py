"""The run's results as JSON, a Markdown table and a PNG chart, side by side in one folder:
``<dir>/<UTC timestamp>.json``, ``.md`` and ``.png``. Every figure comes from ``results``."""

import json
from pathlib import Path

from . import report_engine
from .format import fmt, ok
from .pools import pool_label

TARGETS = {
    "sender_vs_bare": 1.0,  # ours / bare Celery task, at least
    "sender_vs_peer": 1.2,  # ours / django-webhook, at least: clearly ahead
    "receiver_vs_bare": 0.5,  # applied (and duplicates) / bare view, at least
    "latency_p99_ms": 100.0,  # at most
    "scan_ratio": 2.0,  # largest / smallest table, at most
    "memory_ratio": 1.5,  # largest / smallest storm, at most
    "prune_ratio": 1.5,  # one prune batch, largest / smallest table, at most
}


def best_sender(sender: dict) -> dict | None:
    """The pool configuration where ours delivered fastest."""
    configs = [c for c in sender.get("configs", []) if c.get("ours", {}).get("rate")]
    return max(configs, key=lambda c: c["ours"]["rate"]) if configs else None


def evaluate(results: dict) -> list[dict]:
    """One row per target: what was measured, the target, met or not."""
    rows = []
    sender = results.get("sender")
    if sender and (best := best_sender(sender)):
        ratios = best["ratios"]
        rows.append(
            {
                "target": f"sender ours/bare ≥ {TARGETS['sender_vs_bare']} ({pool_label(best)})",
                "value": ratios["bare"],
                "met": ratios["bare"] is not None and ratios["bare"] >= TARGETS["sender_vs_bare"],
            }
        )
        rows.append(
            {
                "target": "sender clearly ahead of django-webhook (ours/peer ≥ "
                f"{TARGETS['sender_vs_peer']})",
                "value": ratios["peer"],
                "met": ratios["peer"] is not None and ratios["peer"] >= TARGETS["sender_vs_peer"],
            }
        )
    receiver = results.get("receiver")
    if receiver:
        for name in ("applied", "duplicates"):
            value = receiver["ratios"][name]
            rows.append(
                {
                    "target": f"receiver {name}/bare view ≥ {TARGETS['receiver_vs_bare']}",
                    "value": value,
                    "met": value >= TARGETS["receiver_vs_bare"] and receiver["correct"],
                }
            )
    latency = results.get("latency")
    if latency:
        value = latency["ours"]["p99_ms"]
        rows.append(
            {
                "target": f"latency p99 ≤ {TARGETS['latency_p99_ms']:.0f} ms",
                "value": value,
                "met": value <= TARGETS["latency_p99_ms"],
            }
        )
    scan = results.get("scan")
    if scan:
        sizes = f"{scan['steps'][-1]['size']:,}/{scan['steps'][0]['size']:,}"
        for name in ("sweep_tick", "reconcile_tick", "queries"):
            value = scan["ratios"][name]
            rows.append(
                {
                    "target": f"scan {name.replace('_', ' ')} {sizes} ≤ {TARGETS['scan_ratio']:g}",
                    "value": value,
                    "met": value is not None and value <= TARGETS["scan_ratio"],
                }
            )
        rows.append(
            {
                "target": "scan query plans use indexes",
                "value": "yes" if scan["plans_use_indexes"] else "no",
                "met": scan["plans_use_indexes"],
            }
        )
    storm = results.get("storm")
    if storm:
        sizes = f"{storm['storms'][-1]['n']:,}/{storm['storms'][0]['n']:,}"
        for name, label in (
            ("worker_rss_peak", "worker peak RSS"),
            ("redis_used_end", "Redis used_memory"),
        ):
            value = storm["ratios"][name]
            rows.append(
                {
                    "target": f"storm {label} {sizes} ≤ {TARGETS['memory_ratio']:g}",
                    "value": value,
                    "met": value <= TARGETS["memory_ratio"],
                }
            )
    prune = results.get("prune")
    if prune:
        rows += _prune_targets(prune)
    return rows + report_engine.evaluate(results)


def _prune_targets(prune: dict) -> list[dict]:
    """Scenario 6's targets: a batch costs the same at any size, and only what may go goes."""
    sizes = f"{prune['steps'][-1]['size']:,}/{prune['steps'][0]['size']:,}"
    value = prune["ratio"]
    return [
        {
            "target": f"prune batch {sizes} ≤ {TARGETS['prune_ratio']:g}",
            "value": value,
            "met": value is not None and value <= TARGETS["prune_ratio"],
        },
        {
            "target": "prune deletes full batches, keeps every undelivered and recent row",
            "value": "yes" if prune["full_batches"] and prune["kept_survived"] else "no",
            "met": prune["full_batches"] and prune["kept_survived"],
        },
        {
            "target": "prune selection uses an index",
            "value": "yes" if prune["plans_use_indexes"] else "no",
            "met": prune["plans_use_indexes"],
        },
    ]


def _sender_lines(sender: dict) -> list[str]:
    """Scenario 1's table: rates and ratios per pool."""
    lines = [
        f"**1. Sender throughput**, {sender['n']:,} notifications due at once "
        "(notifications/s; ratios are ours ÷ baseline)",
        "",
        "| pool:concurrency | ours | (a) bare Celery task | (b) thread pool, no Celery "
        "| (c) django-webhook | ours/(a) | ours/(b) | ours/(c) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    best = best_sender(sender)
    for config in sender["configs"]:
        name = pool_label(config)
        if config is best:
            name = f"**{name}** (best)"
        cells = [
            fmt(config[key].get("rate")) if "rate" in config[key] else "failed"
            for key in ("ours", "bare", "threads", "peer")
        ]
        ratios = [fmt(config["ratios"][key], 2) for key in ("bare", "threads", "peer")]
        lines.append(f"| {name} | " + " | ".join(cells + ratios) + " |")
    lines.append("")
    return lines


def _receiver_lines(receiver: dict) -> list[str]:
    """Scenario 2's table."""
    lines = [
        f"**2. Receiver throughput**, {receiver['n']:,} signed notifications, "
        f"{receiver['clients']} concurrent clients (requests/s; the bare view's is the mean "
        f"of a pass before ours and one after: "
        f"{' and '.join(fmt(rate) for rate in receiver['bare'].get('passes', []))})",
        "",
        "| applied | duplicates | bare Django view | applied/bare | duplicates/bare "
        "| books correct |",
        "|--:|--:|--:|--:|--:|---|",
        f"| {fmt(receiver['applied']['rate'])} | {fmt(receiver['duplicates']['rate'])} "
        f"| {fmt(receiver['bare']['rate'])} | {fmt(receiver['ratios']['applied'], 2)} "
        f"| {fmt(receiver['ratios']['duplicates'], 2)} "
        f"| {'yes' if receiver['correct'] else 'NO'} |",
        "",
    ]
    return lines


def _latency_lines(latency: dict) -> list[str]:
    """Scenario 3's table: ours and the floor."""
    lines = [
        f"**3. Latency**, one order at a time, {latency['ours']['n']:,} orders (ms)",
        "",
        "| | p50 | p95 | p99 | max |",
        "|---|--:|--:|--:|--:|",
    ]
    for key, label in (
        ("ours", "payment commit → ledger credit"),
        ("floor", "empty Celery task, send → start"),
    ):
        row = latency[key]
        lines.append(
            f"| {label} | {fmt(row['p50_ms'])} | {fmt(row['p95_ms'])} "
            f"| {fmt(row['p99_ms'])} | {fmt(row['max_ms'])} |"
        )
    lines.append("")
    return lines


def _storm_lines(storm: dict) -> list[str]:
    """Scenario 5's table: one row per storm."""
    lines = [
        f"**5. Retry storm**, receiver answers 503, after {storm['rounds']} attempts each "
        f"(worker {storm['pool']})",
        "",
        "| notifications | attempts | attempts/s | worker RSS idle → peak (MiB) "
        "| Redis used_memory idle → end, peak (MiB) | messages in broker at end |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    for row in storm["storms"]:
        lines.append(
            f"| {row['n']:,} | {row['attempts']:,} | {fmt(row['attempts_per_second'])} "
            f"| {fmt(row['worker_rss_idle_mib'])} → {fmt(row['worker_rss_peak_mib'])} "
            f"| {fmt(row['redis_used_idle_mib'], 2)} → {fmt(row['redis_used_end_mib'], 2)}"
            f", {fmt(row['redis_used_peak_mib'], 2)} | {row['messages_in_broker_at_end']:,} |"
        )
    lines.append("")
    return lines


def _scan_lines(scan: dict) -> list[str]:
    """Scenario 4's table: one row per table size."""
    lines = [
        f"**4. Scan cost**, {scan['due']} due rows at every size (ms per tick, median of "
        f"{scan['ticks']}; queries alone in the last columns)",
        "",
        "| rows per table | load (s) | sweeper tick | reconciliation tick | sweep queries "
        "| reconcile query | plans use indexes |",
        "|--:|--:|--:|--:|--:|--:|---|",
    ]
    for step in scan["steps"]:
        queries = step["query_ms"]
        sweep_q = queries["sweep: due"] + queries["sweep: orphaned"]
        indexed = all(plan["uses_index"] for plan in step["plans"].values())
        lines.append(
            f"| {step['size']:,} | {fmt(step['load_seconds'])} "
            f"| {fmt(step['sweep_tick_ms'])} | {fmt(step['reconcile_tick_ms'])} "
            f"| {fmt(sweep_q, 2)} | {fmt(queries['reconcile: pending'], 2)} "
            f"| {'yes' if indexed else 'NO'} |"
        )
    lines.append("")
    return lines


def _prune_lines(prune: dict) -> list[str]:
    """Scenario 6's table: one row per table size."""
    lines = [
        f"**6. Prune cost**, one batch of {prune['batch_size']:,} delivered notifications "
        f"with {prune['attempts']} attempts each (ms per batch, median of {prune['batches']})",
        "",
        "| prunable notifications | kept (undelivered, recent) | attempts | load (s) "
        "| ms per batch | selection uses index |",
        "|--:|--:|--:|--:|--:|---|",
    ]
    for step in prune["steps"]:
        rows = step["rows"]
        lines.append(
            f"| {rows['prunable']:,} | {rows['kept']:,} | {rows['attempts']:,} "
            f"| {fmt(step['load_seconds'])} | {fmt(step['batch_ms'])} "
            f"| {'yes' if step['plan']['uses_index'] else 'NO'} |"
        )
    lines += ["", f"Largest ÷ smallest: {fmt(prune['ratio'], 2)}.", ""]
    return lines


def markdown(results: dict) -> str:
    """The tables for people: one per scenario, then the targets."""
    meta = results["meta"]
    lines = [
        f"Run {meta['timestamp']} on {meta['machine']['cpu']} ({meta['machine']['cores']} cores, "
        f"{meta['machine']['memory_gib']} GiB), {meta['database']}, Redis "
        f"{meta['redis_version']}; load average {meta['load']['start'][0]:.2f} at start, "
        f"{meta['load']['max_1min']:.2f} highest 1-min during, {meta['load']['end'][0]:.2f} at "
        f"end; {meta['seconds']:.0f} s in all"
        + "".join(
            f"{'; ' if i else ' ('}{name} {seconds:.0f} s"
            for i, (name, seconds) in enumerate(meta.get("scenario_seconds", {}).items())
        )
        + (")." if meta.get("scenario_seconds") else "."),
        "",
    ]
    for name, section in (
        ("sender", _sender_lines),
        ("slow", report_engine.slow_lines),
        ("noisy", report_engine.noisy_lines),
        ("dead", report_engine.dead_lines),
        ("receiver", _receiver_lines),
        ("latency", _latency_lines),
        ("storm", _storm_lines),
        ("scan", _scan_lines),
        ("prune", _prune_lines),
    ):
        if results.get(name):
            lines += section(results[name])
    lines += report_engine.pools_lines(results)
    lines += cpu_table(results)
    lines += ["**Targets**", "", "| target | measured | |", "|---|--:|---|"]
    for row in results.get("targets", []):
        value = row["value"]
        shown = fmt(value, 2) if isinstance(value, float) else fmt(value)
        lines.append(f"| {row['target']} | {shown} | {ok(row['met'])} |")
    return "\n".join(lines) + "\n"


CPU_PARTS = ("driver", "web", "worker", "receiver", "echo", "postgres", "redis")
SLOW_CPU_ROWS = (
    ("threads", "thread pool"),
    ("bare", "bare Celery task"),
    ("django_webhook", "django-webhook"),
    ("signal_webhooks", "django-signal-webhooks"),
)


def cpu_table(results: dict) -> list[str]:
    """Markdown lines: milliseconds of CPU per item by process, for each contender of the
    sender (best pool), the slow receivers and the receiver, from ``bench.cpu`` (empty if
    not measured)."""
    rows = []
    sender = results.get("sender")
    best = best_sender(sender) if sender else None
    if best:
        pool = pool_label(best)
        for key, label in (("ours", "ours"), ("bare", "bare Celery task"), ("peer", "peer")):
            rows.append((f"sender {label} ({pool}), per notification", best[key]))
    slow = results.get("slow")
    if slow:
        rows += [(f"250 ms ours ({pool}), per request", row) for pool, row in slow["ours"].items()]
        rows += [(f"250 ms {label}, per request", slow[key]) for key, label in SLOW_CPU_ROWS]
    receiver = results.get("receiver")
    if receiver:
        for key in ("bare", "applied", "duplicates"):
            rows.append((f"receiver {key}, per request", receiver[key]))
    rows = [(label, row["cpu_ms"]) for label, row in rows if "cpu_ms" in row]
    if not rows:
        return []
    lines = [
        "**Where the CPU goes** (ms of CPU per item, by process; driver is the load "
        "generator, postgres the server processes of the benchmark database's sessions)",
        "",
        "| | " + " | ".join(CPU_PARTS) + " | total |",
        "|---|" + "--:|" * (len(CPU_PARTS) + 1),
    ]
    for label, cpu in rows:
        cells = [fmt(cpu.get(part), 2) for part in (*CPU_PARTS, "total")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def chart(results: dict, path: Path) -> Path | None:
    """Throughput bars (sender per pool, receiver) and the latency distribution (CDF)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [k for k in ("sender", "receiver", "latency") if results.get(k)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "sender":
            configs = results["sender"]["configs"]
            names = ("ours", "bare", "threads", "peer")
            labels = ("ours", "(a) bare task", "(b) thread pool", "(c) django-webhook")
            width = 0.8 / len(names)
            for index, (name, label) in enumerate(zip(names, labels, strict=True)):
                rates = [config[name].get("rate", 0) for config in configs]
                xs = [i + index * width for i in range(len(configs))]
                ax.bar(xs, rates, width, label=label)
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(configs))])
            ax.set_xticklabels([pool_label(c) for c in configs])
            ax.set_ylabel("notifications/s")
            ax.set_title(f"Sender, {results['sender']['n']:,} due at once")
            ax.legend(fontsize=8)
        elif panel == "receiver":
            receiver = results["receiver"]
            names = ("applied", "duplicates", "bare")
            ax.bar(
                ["applied", "duplicates", "bare view"],
                [receiver[name]["rate"] for name in names],
                color=["tab:blue", "tab:cyan", "tab:gray"],
            )
            ax.set_ylabel("requests/s")
            ax.set_title(f"Receiver, {receiver['n']:,} notifications")
        else:
            latency = results["latency"]
            for key, label in (("ours", "commit → credit"), ("floor", "empty task send → start")):
                samples = sorted(latency[key]["samples_ms"])
                ys = [(i + 1) / len(samples) for i in range(len(samples))]
                ax.step(samples, ys, where="post", label=label)
            ax.set_xscale("log")
            ax.set_xlabel("ms (log)")
            ax.set_ylabel("share of orders")
            ax.axvline(TARGETS["latency_p99_ms"], color="red", linestyle=":", label="100 ms")
            ax.set_title("Latency distribution")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(results: dict, directory: Path) -> dict[str, Path]:
    """``<timestamp>.json``, ``.md`` and ``.png`` in ``directory``; their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = results["meta"]["timestamp"].replace(":", "").replace("-", "")
    results["targets"] = evaluate(results)
    paths = {"json": directory / f"{stem}.json", "md": directory / f"{stem}.md"}
    paths["json"].write_text(json.dumps(results, indent=1, default=str) + "\n")
    paths["md"].write_text(markdown(results))
    png = chart(results, directory / f"{stem}.png")
    if png:
        paths["png"] = png
    return paths
