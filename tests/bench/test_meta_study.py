"""The meta-result study's statistics (bench/meta_study.py) on fixed numbers: ties dropped and counted, the
pooled interval resampled by outer seed, and the issue-15 goal line that says reached only when both
intervals clear zero."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from bilevel.judge.panels import PanelEntry

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def study() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        import meta_study

        return meta_study
    finally:
        sys.path.remove(str(BENCH))


ENTRIES = [PanelEntry(f"bbob-f{f}-d3-i16", f"f{f}", 30_000 + 2 * k + s) for k, f in enumerate((1, 4, 5, 6))
           for s in range(2)]
BASE = np.array([2.0, 2.2, 1.0, 1.1, 3.0, 3.3, 0.5, 0.4])


def _run(seed: int, scores: np.ndarray, kept: bool) -> dict[str, Any]:
    class _Stack:
        mechanisms = ("m",) if kept else ()

        def describe(self) -> str:
            return "m | greedy" if kept else "(no mechanisms) | greedy"

    return {"seed": seed, "salt": f"s{seed}", "run_id": f"r{seed}", "stack": _Stack(), "kept_count": int(kept),
            "scores": scores}


def test_a_run_that_kept_nothing_is_a_tie_dropped_and_counted(study: ModuleType) -> None:
    better = BASE - 0.5  # the kept stack is 0.5 better on every pair
    runs = [_run(0, BASE.copy(), False), _run(1, better, True), _run(2, better - 0.1, True)]
    scores = {"kept stack": BASE.copy(), "baseline inner loop": BASE, "optuna TPE": BASE + 1.0}
    p, pos, used = study.function_sign_p(BASE - BASE, ENTRIES)
    assert (p, pos, used) == (1.0, 0, 0)  # four functions, all tied
    summary = study.study_summary(runs, scores, ENTRIES)
    assert summary["runs_keeping"] == 2 and summary["runs_transferring"] == 2
    base = summary["pooled"]["baseline inner loop"]
    assert base["seeds_used"] == 2 and base["seeds_tied"] == 1 and base["seeds_kept_better"] == 2
    assert base["seed_sign_p"] == pytest.approx(0.5)  # 2 of 2 after dropping the tie: 2 * (1/4)
    assert base["mean"] == pytest.approx((0.0 + 0.5 + 0.6) / 3)
    assert base["unit"].startswith("outer seed x function (crossed)")
    rows = study.study_rows([study.seed_result(r, scores, ENTRIES) for r in runs], runs, scores, ENTRIES)
    text = "\n".join(rows)
    assert "| baseline inner loop | +0.367 [" in text and "2/2 (1 tied, dropped), p=0.5" in text
    assert text.endswith("each with its 95% interval above 0): not reached")  # seed 0's 0 keeps the low end at 0


def test_the_goal_is_reached_only_when_both_intervals_clear_zero(study: ModuleType) -> None:
    runs = [_run(k, BASE - 0.5 - 0.1 * k, True) for k in range(3)]
    scores = {"kept stack": runs[0]["scores"], "baseline inner loop": BASE, "optuna TPE": BASE + 1.0}
    rows = study.study_rows([study.seed_result(r, scores, ENTRIES) for r in runs], runs, scores, ENTRIES)
    assert rows[-1].endswith(": reached")
    scores["optuna TPE"] = BASE - 2.0  # TPE now beats every kept stack
    rows = study.study_rows([study.seed_result(r, scores, ENTRIES) for r in runs], runs, scores, ENTRIES)
    assert rows[-1].endswith(": not reached")


def test_identical_runs_pool_to_no_narrower_an_interval_than_one(study: ModuleType) -> None:
    """The sealed functions are shared by every run: copies of one run must not look like more evidence."""
    rng = np.random.default_rng(1)
    entries = [PanelEntry(f"bbob-f{f}-d3-i16", f"f{f}", 30_000 + 4 * f + s) for f in range(1, 13) for s in range(4)]
    diffs = rng.normal(0.1, 1.0, len(entries)) + np.repeat(rng.normal(0.0, 1.0, 12), 4)  # function effects
    one = study.by_function(diffs, entries)
    mean, low, high = study.crossed_ci(np.array([diffs] * 5), entries)
    assert mean == pytest.approx(one.mean)
    assert (high - low) > 0.8 * (one.high - one.low)  # about the same width: five copies are one run


def test_function_rows_show_each_function_and_the_mean_without_the_one_that_carries_it(study: ModuleType) -> None:
    kept = BASE.copy()
    kept[4:6] -= 9.0  # f5: the kept stack reaches the floor on one function only
    kept[[0, 2]] += 0.1  # and is a little worse on f1 and f4
    scores = {study.KEPT: kept, study.BASELINE: BASE, study.TPE: BASE + 0.5}
    rows = study.function_rows(scores, ENTRIES)
    assert rows[2] == "|---|---|---|"
    by_function = {r.split(" | ")[0].lstrip("| "): r for r in rows[3:7]}
    assert list(by_function) == ["f1", "f4", "f5", "f6"]
    assert by_function["f5"].endswith("| +9.000 | +9.500 |")
    assert by_function["f1"].startswith("| f1 | -0.050 | +0.450 |")
    last = rows[-1]
    assert last.startswith("without f5 (the function with the largest difference to the baseline inner loop)")
    without = [k for k in range(8) if k not in (4, 5)]
    mean = float(np.mean((BASE - kept)[without]))
    assert f"baseline inner loop {mean:+.3f} [" in last
