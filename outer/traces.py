"""Trace analysis of the incumbent's inner runs on the search panel.

What the outer loop (and its authors) learn about how the inner loop is
searching: repeated proposals, parameters never moved, plateaus, rejected and
failed trials, per-parameter sensitivity, and per instance group (BBOB function, data-mix group) the
incumbent's and the baseline's mean score and the difference (:func:`group_results`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bilevel.inner.records import InnerResult, Trial
from bilevel.inner.space import Space
from bilevel.judge.evaluate import EvalResult

EXAMPLE_TRIALS = 3  # the first trials of the first inner run, shown to the author as real trial dicts


@dataclass(frozen=True)
class GroupResult:
    """One instance group of the search panel: the mean primary score (lower is better) of the analysed
    stack and of the baseline (no mechanisms, the run's first search config) over the group's pairs."""

    group: str
    n_pairs: int
    incumbent_mean: float
    baseline_mean: float

    @property
    def improvement(self) -> float:
        """baseline - incumbent (positive: the incumbent scores lower, i.e. better)."""
        return self.baseline_mean - self.incumbent_mean

    def line(self) -> str:
        return (f"{self.group}: incumbent {self.incumbent_mean:.4g}, baseline {self.baseline_mean:.4g}, "
                f"improvement {self.improvement:+.4g} (n={self.n_pairs} pairs)")


def group_results(incumbent: Sequence[EvalResult], baseline: Sequence[EvalResult]) -> tuple[GroupResult, ...]:
    """Per group, in first-seen order, the means of both stacks over the pairs both ran (same panel entries).

    Called by the outer loop once per generation with the incumbent's and the baseline's search-panel runs."""
    base = {(r.instance, r.seed): r.primary for r in baseline}
    groups: dict[str, list[tuple[float, float]]] = {}
    for r in incumbent:
        if (r.instance, r.seed) in base:
            groups.setdefault(r.group or "(all)", []).append((r.primary, base[(r.instance, r.seed)]))
    return tuple(GroupResult(g, len(v), float(np.mean([a for a, _ in v])), float(np.mean([b for _, b in v])))
                 for g, v in groups.items())


@dataclass(frozen=True)
class TraceReport:
    """A summary over several inner runs (each share is over all their trials)."""

    n_runs: int
    n_trials: int
    repeated_share: float
    never_moved: tuple[str, ...]
    longest_plateau: int
    plateau_share: float
    rejected_share: float
    failed_share: float
    kept_share: float
    sensitivity: dict[str, float]
    moved_share: dict[str, float]
    groups: tuple[GroupResult, ...] = ()
    example_trials: tuple[dict[str, Any], ...] = ()  # trial dicts (``Trial.for_mechanisms``), for the author

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """The report as short sentences, for prompts and ``bilevel show``."""
        top = sorted(self.sensitivity.items(), key=lambda kv: -kv[1])[:3]
        per_group = ([f"per group (mean score on the search panel, lower is better; improvement = baseline - "
                      f"incumbent): {'; '.join(g.line() for g in self.groups)}"] if self.groups else [])
        return [
            f"{self.n_runs} runs, {self.n_trials} trials; {self.kept_share:.0%} of trials improved the incumbent",
            f"repeated proposals: {self.repeated_share:.0%}; rejected by review: {self.rejected_share:.0%}; "
            f"failed: {self.failed_share:.0%}",
            f"plateaus: longest {self.longest_plateau} trials; {self.plateau_share:.0%} of trials after the last gain",
            f"never moved: {', '.join(self.never_moved) or 'none'}",
            "most sensitive: " + ", ".join(f"{k} ({v:.3g})" for k, v in top),
            *per_group,
        ]


def _changed_params(space: Space, trial: Trial, reference: Trial | None) -> list[str]:
    if reference is None:
        return []
    return [n for n in space.names if trial.config.get(n) != reference.config.get(n)]


def _run_stats(space: Space, result: InnerResult) -> dict[str, Any]:
    seen: set[str] = set()
    repeated = plateau = longest = rejected = failed = kept = 0
    run_len = 0
    moved = {n: 0 for n in space.names}
    effect: dict[str, list[float]] = {n: [] for n in space.names}
    incumbent: Trial | None = None
    for trial in result.trials:
        key = repr(sorted(trial.config.items()))
        repeated += key in seen
        seen.add(key)
        rejected += trial.rejections > 0
        failed += trial.score is None
        changed = _changed_params(space, trial, incumbent)
        for n in changed:
            moved[n] += 1
            if trial.score is not None and incumbent is not None and incumbent.score is not None:
                effect[n].append(abs(trial.score - incumbent.score) / max(1, len(changed)))
        if trial.kept:
            kept += 1
            incumbent = trial
            run_len = 0
        else:
            run_len += 1
            longest = max(longest, run_len)
    plateau = run_len
    return {"repeated": repeated, "plateau": plateau, "longest": longest, "rejected": rejected,
            "failed": failed, "kept": kept, "moved": moved, "effect": effect, "n": len(result.trials)}


def analyse(space: Space, results: Sequence[InnerResult], groups: tuple[GroupResult, ...] = ()) -> TraceReport:
    """Analyse the inner runs of one stack (called once per generation, on the search panel); ``groups``
    are its per-group results against the baseline (:func:`group_results`)."""
    stats = [_run_stats(space, r) for r in results]
    n = sum(s["n"] for s in stats) or 1
    moved = {p: sum(s["moved"][p] for s in stats) / n for p in space.names}
    effects = {p: [e for s in stats for e in s["effect"][p]] for p in space.names}
    return TraceReport(
        n_runs=len(results),
        n_trials=sum(s["n"] for s in stats),
        repeated_share=sum(s["repeated"] for s in stats) / n,
        never_moved=tuple(p for p, share in moved.items() if share == 0.0),
        longest_plateau=max((s["longest"] for s in stats), default=0),
        plateau_share=sum(s["plateau"] for s in stats) / n,
        rejected_share=sum(s["rejected"] for s in stats) / n,
        failed_share=sum(s["failed"] for s in stats) / n,
        kept_share=sum(s["kept"] for s in stats) / n,
        sensitivity={p: float(np.mean(v)) if v else 0.0 for p, v in effects.items()},
        moved_share=moved,
        groups=groups,
        example_trials=tuple(t.for_mechanisms() for t in (results[0].trials[:EXAMPLE_TRIALS] if results else ())),
    )
