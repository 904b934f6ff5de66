"""``bilevel calibrate``: an A/A check of the judge on the ``null`` benchmark.

It runs N ordinary outer runs (each with its own outer seed and panel salt)
on the ``null`` benchmark, where nothing can help, with the spec's judge,
panels and budgets, and counts the runs that kept anything: every such keep
is false. The false-keep rate per run gets an exact (Clopper-Pearson)
interval over the N runs, the unit being the outer run. Every run is kept in
the store, so a surprising keep can be shown and replayed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bilevel.runs.driver import create_run, execute
from bilevel.runs.history import load_history
from bilevel.runs.spec import RunSpec, merge
from bilevel.runs.store import Store

BENCHMARK = "null"


def _binom_cdf(k: int, n: int, p: float) -> float:
    return math.fsum(math.comb(n, i) * p**i * (1.0 - p) ** (n - i) for i in range(k + 1))


def _solve(f: Callable[[float], float], target: float) -> float:
    """p in [0, 1] with f(p) = target, for f decreasing in p (bisection to 1e-10)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact binomial interval of a rate from ``k`` events in ``n`` trials."""
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else _solve(lambda p: _binom_cdf(k - 1, n, p), 1.0 - alpha / 2.0)
    high = 1.0 if k == n else _solve(lambda p: _binom_cdf(k, n, p), alpha / 2.0)
    return low, high


@dataclass(frozen=True)
class CalibrationRun:
    run_id: str
    kept: int
    candidates: int
    passed_validation: int


@dataclass(frozen=True)
class Calibration:
    runs: tuple[CalibrationRun, ...]
    wall_s: float

    @property
    def false_keeps(self) -> int:
        return sum(1 for r in self.runs if r.kept > 0)

    def lines(self) -> list[str]:
        n = len(self.runs)
        low, high = clopper_pearson(self.false_keeps, n)
        kept = [f"{r.run_id} (kept {r.kept})" for r in self.runs if r.kept > 0]
        cands = sum(r.candidates for r in self.runs)
        passed = sum(r.passed_validation for r in self.runs)
        return [
            f"false_keep_rate: {self.false_keeps / n:.3f} [{low:.3f}, {high:.3f}] (runs that kept anything / "
            f"{n} runs on the null benchmark; exact Clopper-Pearson 95% interval; unit: outer run)",
            f"runs_that_kept: {', '.join(kept) if kept else 'none'}",
            f"candidates_judged: {cands}",
            f"validation_passes: {passed} (candidates the validation panel passed before confirmation; "
            f"{passed / cands if cands else 0.0:.3f} per candidate)",
            f"runs: {n}",
            f"wall_s: {self.wall_s:.1f}",
        ]


def calibration_spec(base: RunSpec, index: int) -> RunSpec:
    """Run ``index``'s spec: the null benchmark, its own outer seed and panel salt."""
    data = base.to_json()
    return RunSpec(merge(data, {"run": {"benchmark": BENCHMARK, "seed": int(data["run"]["seed"]) + index},
                                "panels": {"salt": f"{data['panels']['salt']}-cal{index}"}}, "calibrate"))


def run_calibration(store: Store, base: RunSpec, runs: int, progress: Callable[[str], None] = lambda _m: None,
                    on_eval: Callable[[int, int], None] | None = None,
                    on_run: Callable[[CalibrationRun], None] = lambda _r: None) -> Calibration:
    """Run ``runs`` outer runs on the null benchmark and count those that kept anything."""
    if runs < 1:
        raise ValueError("--runs must be at least 1")
    started = time.monotonic()
    out: list[CalibrationRun] = []
    for index in range(runs):
        spec = calibration_spec(base, index)
        run_id = create_run(store, spec)
        store.recorder(run_id).record_event("calibrate", "calibrate", {"index": index, "runs": runs})
        progress(f"calibration run {index + 1}/{runs}")
        execute(store, run_id, progress=progress, on_eval=on_eval)
        history = load_history(store, run_id)
        kept = sum(1 for g in history.generations if g.kept is not None)
        passed = sum(1 for v in history.verdicts if v["keep"] or v["stage"] == "confirmation")
        result = CalibrationRun(run_id, kept, len(history.verdicts), passed)
        on_run(result)
        out.append(result)
    return Calibration(tuple(out), time.monotonic() - started)


def describe(spec: RunSpec) -> dict[str, Any]:
    """The settings the calibration ran under, for its header line."""
    return {"generations": spec["run"]["generations"], "candidates": spec["run"]["candidates"],
            "promotion": spec["judge"]["promotion"], "confidence": spec["judge"]["confidence"],
            "validation_instances": spec["panels"]["validation_instances"],
            "confirmation_instances": spec["panels"]["confirmation_instances"], "split": spec["panels"]["split"]}
