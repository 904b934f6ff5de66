"""Evaluating stacks on panel entries, and turning paired evaluations into verdicts.

The judge owns the score: an inner run's number comes from the benchmark's
``score`` on the recorded trials, never from anything the mechanisms return.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.records import InnerResult, Trial
from bilevel.judge.benchmarks.base import Benchmark, Instance
from bilevel.judge.decision import Evidence, Thresholds, Verdict, confirm, decide, stage1_rejects
from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Stack
from bilevel.judge.stats import hierarchical_bootstrap_ci


@dataclass(frozen=True)
class EvalResult:
    """One inner run of one stack on one panel entry, as the judge scored it."""

    instance: str
    group: str
    seed: int
    primary: float
    subscores: dict[str, float]
    n_trials: int
    hook_calls: int
    hook_faults: int
    fired_by: dict[str, int]
    changed_by: dict[str, int]
    best_so_far: tuple[float, ...]
    faults: tuple[dict[str, str], ...] = ()
    elapsed_s: float = 0.0
    trace: dict[str, Any] | None = None  # the whole InnerResult, kept for search-panel runs only
    llm_calls: tuple[dict[str, Any], ...] = ()  # the LLM proposer's call records, for the run store
    sandbox_layers: tuple[str, ...] = ()  # the sandbox layers active in the run's worker (none: no mechanism)
    failed_trials: int = 0  # trials with no score (the objective failed, or the candidate was invalid)
    first_failure: str = ""  # the first failed trial's error, for the run's failure report
    best_config: dict[str, Any] | None = None  # the best trial's config (``bilevel best``); None: no trial scored
    # every trial in short, when no trace is kept (``export --trials``): [config, score, kept, source,
    # ids of the mechanisms whose hooks changed it, error (200 characters)]
    trial_rows: tuple[list[Any], ...] = ()

    def inner_result(self) -> InnerResult:
        if self.trace is None:
            raise ValueError(f"no trace was kept for {self.instance}@{self.seed}")
        return InnerResult.from_json(self.trace)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["best_so_far"] = list(self.best_so_far)
        d["faults"] = list(self.faults)
        d["llm_calls"] = list(self.llm_calls)
        d["trial_rows"] = [list(r) for r in self.trial_rows]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EvalResult:
        return cls(**{**d, "best_so_far": tuple(d["best_so_far"]), "faults": tuple(d.get("faults", ())),
                      "llm_calls": tuple(d.get("llm_calls", ())),
                      "sandbox_layers": tuple(d.get("sandbox_layers", ())),
                      "trial_rows": tuple(d.get("trial_rows", ()))})


MAX_FAULTS_KEPT = 20


def summarise_run(instance: Instance, seed: int, result: InnerResult, benchmark: Benchmark,
                  elapsed_s: float, keep_trace: bool = False) -> EvalResult:
    """Score an inner run and count, per mechanism, the trials where it fired and where it changed something."""
    score = benchmark.score(instance, result)
    fired: dict[str, int] = {m: 0 for m in result.mechanisms}
    changed: dict[str, int] = {m: 0 for m in result.mechanisms}
    calls = faults = 0
    # who failed to load or was disabled (sandbox faults of the stack, issue 11), then the hook faults
    fault_list: list[dict[str, str]] = [{**f, "trial": "-1"} for f in result.mechanism_faults]
    for trial in result.trials:
        fired_here: set[str] = set()
        changed_here: set[str] = set()
        for ev in trial.hooks:
            calls += 1
            if ev.status != "ok":
                faults += 1
                if len(fault_list) < MAX_FAULTS_KEPT:
                    fault_list.append({"mechanism": ev.mechanism, "hook": ev.hook, "status": ev.status,
                                       "message": ev.message, "trial": str(trial.index)})
                continue
            fired_here.add(ev.mechanism)
        changed_here.update(trial.changed_by)  # counterfactual (inner.counterfactual), not the hook's own say
        for m in fired_here:
            fired[m] = fired.get(m, 0) + 1
        for m in changed_here:
            changed[m] = changed.get(m, 0) + 1
    failed = [t for t in result.trials if t.score is None]
    return EvalResult(instance.key, instance.group, seed, score.primary, dict(score.subscores),
                      len(result.trials), calls, faults, fired, changed, tuple(result.best_so_far),
                      tuple(fault_list), elapsed_s, _trace(result) if keep_trace else None, result.llm_calls,
                      result.sandbox_layers, len(failed), failed[0].error[:1000] if failed else "",
                      None if result.best is None else dict(result.best.config),
                      () if keep_trace else tuple(_trial_row(t) for t in result.trials))


def _trial_row(t: Trial) -> list[Any]:
    changed = sorted({h.mechanism for h in t.hooks if h.changed and h.status == "ok"})
    return [t.config, t.score, t.kept, t.source, changed, t.error[:200]]


def _trace(result: InnerResult) -> dict[str, Any]:
    """The inner result's JSON without its LLM calls (they travel in ``EvalResult.llm_calls``)."""
    d = result.to_json()
    d.pop("llm_calls", None)
    return d


def evaluate_entry(benchmark: Benchmark, stack: Stack, entry: PanelEntry, settings: InnerSettings,
                   keep_trace: bool = False) -> EvalResult:
    """Run ``stack`` on one panel entry and score it (called by evaluators, possibly in a worker process)."""
    instance = benchmark.instance(entry.instance)
    objective = benchmark.objective(instance, entry.seed)
    start = time.perf_counter()
    result = run_inner(objective, stack.sources(), dataclasses.replace(settings, search=stack.search), entry.seed)
    return summarise_run(instance, entry.seed, result, benchmark, time.perf_counter() - start, keep_trace)


class Evaluator(Protocol):
    """Evaluates a stack on panel entries; implementations may cache, record or parallelise."""

    def evaluate_many(self, stack: Stack, entries: Sequence[PanelEntry], keep_trace: bool = False,
                      ) -> list[EvalResult]: ...


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two stacks on the same panel entries (improvement = reference - candidate)."""

    mean: float
    ci_low: float
    ci_high: float
    n_pairs: int
    unit: str = "pair"  # what the bootstrap resampled: "group", "instance" or "pair"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_evidence(candidate: Stack, incumbent: Stack, cand: Sequence[EvalResult],
                   inc: Sequence[EvalResult]) -> Evidence:
    """Pair the two stacks' results entry by entry and measure the candidate's activity and faults."""
    new_ids = [m for m in candidate.mechanism_ids if m not in incumbent.mechanism_ids]
    watched = new_ids or list(candidate.mechanism_ids)
    trials = sum(r.n_trials for r in cand) or 1
    # Every new mechanism must clear min_changed_share on its own: the least active one decides.
    shares = {m: sum(r.changed_by.get(m, 0) for r in cand) / trials for m in watched}
    changed = min(shares.values(), default=0.0)
    fired = sum(max((r.fired_by.get(m, 0) for m in watched), default=0) for r in cand) / trials
    calls = sum(r.hook_calls for r in cand)
    fault_rate = sum(r.hook_faults for r in cand) / calls if calls else 0.0
    names = sorted({k for r in cand for k in r.subscores})
    return Evidence(
        keys=tuple(f"{r.instance}@{r.seed}" for r in cand),
        groups=tuple(r.group for r in cand),
        candidate=tuple(r.primary for r in cand),
        incumbent=tuple(r.primary for r in inc),
        candidate_subscores={n: tuple(r.subscores.get(n, float("nan")) for r in cand) for n in names},
        incumbent_subscores={n: tuple(r.subscores.get(n, float("nan")) for r in inc)
                             for n in sorted({k for r in inc for k in r.subscores})},
        changed_share=changed,
        fired_share=fired,
        fault_rate=fault_rate,
        requires_activity=bool(candidate.mechanisms),
        changed_shares=_by_name(candidate, shares) if candidate.mechanisms else {},
    )


def _by_name(stack: Stack, by_id: dict[str, float]) -> dict[str, float]:
    """``by_id`` keyed by mechanism name in stack order (a name two mechanisms share gets its id's prefix)."""
    names = [m.name for m in stack.mechanisms]
    return {(m.name if names.count(m.name) == 1 else f"{m.name}#{m.id[:8]}"): by_id[m.id]
            for m in stack.mechanisms if m.id in by_id}


class Judge:
    """The frozen judge: decides whether a candidate stack replaces the incumbent.

    ``verdict`` is called once per candidate per generation; it runs the cheap
    first stage of the cascade, then (unless that rejects) the full
    validation panel. ``confirm`` is called once per generation on its winner,
    with that generation's fresh confirmation panel (``confirmation(g)``; None:
    no confirmation stage, the validation verdict stands). ``compare`` is for
    reports on any panel.
    """

    def __init__(self, validation: Sequence[PanelEntry], stage1: Sequence[PanelEntry],
                 thresholds: Thresholds, manifest_hash: str, evaluator: Evaluator,
                 confirmation: Callable[[int], Sequence[PanelEntry]] | None = None) -> None:
        self.validation = tuple(validation)
        self.stage1 = tuple(stage1)
        self.thresholds = thresholds
        self.manifest_hash = manifest_hash
        self.evaluator = evaluator
        self.confirmation = confirmation

    @property
    def confirms(self) -> bool:
        """Whether a generation's winner goes through a confirmation stage."""
        return self.confirmation is not None

    def confirm(self, generation: int, candidate: Stack, incumbent: Stack, selection: Verdict) -> Verdict:
        """The winner's final verdict: ``selection`` (its validation verdict) when there is no
        confirmation stage, else ``decision.confirm`` on generation ``generation``'s panel."""
        if self.confirmation is None:
            return selection
        ev = self._evidence(candidate, incumbent, self.confirmation(generation))
        return confirm(ev, selection, self.thresholds, self.manifest_hash)

    def verdict(self, candidate: Stack, incumbent: Stack) -> Verdict:
        if self.stage1 and len(self.stage1) < len(self.validation):
            ev = self._evidence(candidate, incumbent, self.stage1)
            early = stage1_rejects(ev, self.thresholds, self.manifest_hash)
            if early is not None:
                return early
        ev = self._evidence(candidate, incumbent, self.validation)
        return decide(ev, self.thresholds, self.manifest_hash, stage="full")

    def _evidence(self, candidate: Stack, incumbent: Stack, entries: Sequence[PanelEntry]) -> Evidence:
        cand = self.evaluator.evaluate_many(candidate, entries)
        inc = self.evaluator.evaluate_many(incumbent, entries)
        return build_evidence(candidate, incumbent, cand, inc)

    def compare(self, candidate: Stack, reference: Stack, entries: Sequence[PanelEntry]) -> Comparison:
        cand = self.evaluator.evaluate_many(candidate, entries)
        ref = self.evaluator.evaluate_many(reference, entries)
        diffs = np.array([r.primary - c.primary for c, r in zip(cand, ref, strict=True)])
        ci = hierarchical_bootstrap_ci(diffs, [c.group for c in cand], [c.instance for c in cand],
                                       self.thresholds.confidence, self.thresholds.n_boot, seed=0)
        return Comparison(ci.mean, ci.low, ci.high, len(diffs), ci.unit)
