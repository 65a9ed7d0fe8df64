"""Deleting a table's old rows in bounded batches, within a time budget, so that a beat
task never holds long locks nor runs past its interval."""

import time
from collections.abc import Callable


def batches_within_budget(
    *, delete_batch: Callable[[], tuple[dict[str, int], bool]], budget_seconds: float
) -> dict:
    """Call ``delete_batch`` until a batch comes back short or ``budget_seconds`` have
    passed. Each call deletes one batch in its own transaction and returns ``({name: rows
    deleted}, full)``, ``full`` when it found as many rows as it may take (more may wait).
    Returns the rows summed by name, with ``batches`` (the calls made) and ``more`` (true
    when the budget ran out after a full batch: the rest is for the next run)."""
    deadline = time.monotonic() + budget_seconds
    counts = {"batches": 0, "more": False}
    while True:
        deleted, full = delete_batch()
        counts["batches"] += 1
        for name, rows in deleted.items():
            counts[name] = counts.get(name, 0) + rows
        if not full:
            return counts
        if time.monotonic() >= deadline:
            counts["more"] = True
            return counts
