"""Failed trials of a run: counted per stack as evaluations arrive, and a baseline that cannot run stops the run.

``FailureWatch`` sits between the panel evaluator and the run recorder (it is
the evaluator's cache): every evaluation passes through it, found in the
store or freshly computed. ``failure_counts`` reads the same numbers back
from a stored run for the summary, ``show`` and ``runs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bilevel.judge.errors import JudgeError
from bilevel.judge.panels import PanelEntry
from bilevel.runs.store import RunRecorder, Store


class BaselineFailed(JudgeError):
    """Every trial of the baseline failed on a whole panel: the benchmark cannot run, so the run stops."""


@dataclass
class StackFailures:
    """Trials and failed trials of one stack, with the first failure's message."""

    trials: int = 0
    failed: int = 0
    evaluations: int = 0
    all_failed: int = 0  # evaluations in which every trial failed
    first: str = ""

    def add(self, result: dict[str, Any]) -> int:
        n, failed = int(result.get("n_trials", 0)), int(result.get("failed_trials", 0))
        self.trials += n
        self.failed += failed
        self.evaluations += 1
        self.all_failed += int(n > 0 and failed == n)
        if failed and not self.first:
            self.first = str(result.get("first_failure", ""))
        return failed


class FailureWatch:
    """The evaluator's cache: passes everything to ``recorder`` and counts failed trials per stack.

    ``on_failed(n)`` is called with the failed trials of each evaluation that had some (progress).
    When ``panel_size`` evaluations of the baseline (``baseline_key``) have arrived and every trial of
    every one failed, the next ``put_eval``/``get_eval`` raises :class:`BaselineFailed` (a ``run_error``
    event is recorded first, so ``runs`` and ``show`` say the run failed and why)."""

    def __init__(self, recorder: RunRecorder, baseline_key: str, panel_size: int,
                 on_failed: Callable[[int], None] | None = None) -> None:
        self.recorder = recorder
        self.baseline_key = baseline_key
        self.panel_size = max(1, panel_size)
        self.on_failed = on_failed
        self.stacks: dict[str, StackFailures] = {}

    def get_eval(self, key: str) -> dict[str, Any] | None:
        hit = self.recorder.get_eval(key)
        if hit is not None:
            row = self.recorder.store.db.execute(
                "SELECT stack_key FROM evaluations WHERE run_id = ? AND key = ?",
                (self.recorder.run_id, key)).fetchone()
            self._count(str(row[0]) if row else "", hit)
        return hit

    def put_eval(self, key: str, stack_key: str, entry: PanelEntry, result: dict[str, Any]) -> None:
        self.recorder.put_eval(key, stack_key, entry, result)
        self._count(stack_key, result)

    def _count(self, stack_key: str, result: dict[str, Any]) -> None:
        failed = self.stacks.setdefault(stack_key, StackFailures()).add(result)
        if failed and self.on_failed is not None:
            self.on_failed(failed)
        base = self.stacks.get(self.baseline_key)
        if base is not None and stack_key == self.baseline_key and base.evaluations >= self.panel_size \
                and base.all_failed == base.evaluations:
            message = (f"the baseline failed every trial of {base.evaluations} inner runs "
                       f"({base.failed} trials): the benchmark cannot run. First error: {base.first}")
            self.recorder.record_event(f"run_error:{base.evaluations}", "run_error", {"message": message})
            raise BaselineFailed(message)


def failure_counts(store: Store, run_id: str) -> dict[str, StackFailures]:
    """Trials and failed trials per stack key over every stored evaluation of a run (summed by SQLite,
    without loading the evaluations: ``bilevel runs`` reads this for every run; records SQLite cannot
    parse, such as a NaN score, are read in Python)."""
    import sqlite3

    try:
        return _counted_by_sqlite(store, run_id)
    except sqlite3.OperationalError:
        out: dict[str, StackFailures] = {}
        for ev in store.evaluations(run_id):
            out.setdefault(ev["stack_key"], StackFailures()).add(ev["result"])
        return out


def _counted_by_sqlite(store: Store, run_id: str) -> dict[str, StackFailures]:
    rows = store.db.execute(
        "SELECT stack_key, COUNT(*), SUM(json_extract(result, '$.n_trials')), "
        "SUM(COALESCE(json_extract(result, '$.failed_trials'), 0)), "
        "SUM(json_extract(result, '$.n_trials') > 0 AND "
        "    COALESCE(json_extract(result, '$.failed_trials'), 0) = json_extract(result, '$.n_trials')), "
        "MAX(COALESCE(json_extract(result, '$.first_failure'), '')) "
        "FROM evaluations WHERE run_id = ? GROUP BY stack_key ORDER BY stack_key", (run_id,))
    return {str(key): StackFailures(int(trials or 0), int(failed or 0), int(n), int(all_failed or 0), str(first))
            for key, n, trials, failed, all_failed, first in rows}


def failed_trials_line(counts: dict[str, StackFailures]) -> str:
    """``N of M trials`` and, when some failed, the stacks they failed in (8-character ids)."""
    trials = sum(c.trials for c in counts.values())
    failed = sum(c.failed for c in counts.values())
    if not failed:
        return f"0 of {trials} trials"
    worst = sorted(((k, c) for k, c in counts.items() if c.failed), key=lambda kc: (-kc[1].failed, kc[0]))
    per = ", ".join(f"{k[:8]} {c.failed}/{c.trials}" for k, c in worst[:6])
    more = f", +{len(worst) - 6} more stacks" if len(worst) > 6 else ""
    return f"{failed} of {trials} trials (per stack: {per}{more}); first error: {worst[0][1].first[:300]}"
