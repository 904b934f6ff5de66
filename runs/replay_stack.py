"""Replay a discovered stack on new instances and seeds, scored against the baseline on the same pairs.

The stack comes from a run (by its id in ``bilevel lineage``) or a sampler/
recipe file's sources; the benchmark may be the run's or another one (a
transfer test), with its own options. Both the stack and the baseline inner
loop run with the run's inner settings (budget, search config) on every
(instance, seed) pair, and the paired improvement gets the judge's cluster
bootstrap interval (groups, then instances, then seeds; the unit printed as
``ci_unit``) and a sign test that drops ties and differences within
``SIGN_TOLERANCE`` (and says how many), exactly as a verdict would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.benchmarks.base import Instance
from bilevel.judge.evaluate import EvalResult
from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Stack
from bilevel.judge.stats import hierarchical_bootstrap_ci, sign_test
from bilevel.outer.evaluator import BenchmarkRef, PanelEvaluator
from bilevel.runs.driver import inner_settings, judge_setup
from bilevel.runs.history import load_history
from bilevel.runs.store import Store, StoreError


@dataclass(frozen=True)
class ReplayResult:
    """The paired outcome of a replay; ``pairs`` are (instance@seed, baseline, stack) scores."""

    stack: str
    benchmark: str
    pairs: tuple[tuple[str, float, float], ...]
    mean: float
    ci_low: float
    ci_high: float
    p_sign: float
    wins: int
    ci_unit: str = "pair"
    losses: int = 0
    dropped: int = 0

    def lines(self) -> list[str]:
        out = [f"stack: {self.stack}", f"benchmark: {self.benchmark}", f"pairs: {len(self.pairs)}",
               f"improvement: {self.mean:+.4f}", f"ci: [{self.ci_low:+.4f}, {self.ci_high:+.4f}]",
               f"ci_unit: {self.ci_unit}",
               f"sign_test_p: {self.p_sign:.4g} ({self.dropped} ties within {SIGN_TOLERANCE:g} dropped)",
               f"wins: {self.wins}/{len(self.pairs)}", f"losses: {self.losses}/{len(self.pairs)}", "per pair:"]
        out.extend(f"  {k}\tbaseline={b:.4f}\tstack={s:.4f}\tgain={b - s:+.4f}" for k, b, s in self.pairs)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "benchmark": self.benchmark, "mean": self.mean, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "ci_unit": self.ci_unit, "p_sign": self.p_sign, "wins": self.wins,
                "losses": self.losses, "dropped": self.dropped,
                "pairs": [list(p) for p in self.pairs]}


def entries(benchmark: str, options: dict[str, Any], instances: Sequence[str] | int,
            seeds: Sequence[int], avoid: frozenset[str] = frozenset()) -> list[PanelEntry]:
    """The (instance, seed) pairs: named instance keys, or N instances taken round-robin over the
    benchmark's groups, preferring instances not in ``avoid`` (the run's own panels)."""
    bench = get_benchmark(benchmark, options)
    if isinstance(instances, int):
        everything = bench.instances()
        fresh = [i for i in everything if i.key not in avoid]
        chosen = _round_robin(fresh, instances)
        if len(chosen) < instances:  # too few unseen instances: top up with panel instances
            chosen += _round_robin([i for i in everything if i.key in avoid], instances - len(chosen))
    else:
        chosen = [bench.instance(k) for k in instances]
    if not chosen:
        raise StoreError(f"no instances of {benchmark} to replay on")
    return [PanelEntry(i.key, i.group, int(s)) for i in chosen for s in seeds]


def _round_robin(pool: Sequence[Instance], n: int) -> list[Instance]:
    groups: dict[str, list[Instance]] = {}
    for inst in pool:
        groups.setdefault(inst.group, []).append(inst)
    out: list[Instance] = []
    while len(out) < n and any(groups.values()):
        for members in groups.values():
            if members and len(out) < n:
                out.append(members.pop(0))
    return out


def replay_stack(store: Store, run_id: str, stack_id: str | None, benchmark: str | None = None,
                 options: dict[str, Any] | None = None, instances: Sequence[str] | int = 4,
                 seeds: Sequence[int] = (100_000,), workers: int = 1, stack: Stack | None = None,
                 on_eval: Callable[[int, int], None] | None = None) -> ReplayResult:
    """Run ``stack_id`` of ``run_id`` (or the run's final stack) and the baseline on fresh pairs.

    ``benchmark``/``options`` default to the run's. Nothing is written to the
    store: a replay is a measurement, not part of the run's record.
    """
    history = load_history(store, run_id)
    if stack is None:
        stack = history.final if stack_id is None else history.candidate_stack(store, stack_id)[0]
    name = benchmark or history.benchmark
    opts = history.spec["benchmark"] if benchmark is None and options is None else (options or {})
    used: frozenset[str] = frozenset()
    if benchmark is None or benchmark == history.benchmark:
        panels = judge_setup(history.spec).panels
        used = frozenset(e.instance for e in (*panels.search, *panels.validation, *panels.test))
    pairs = entries(name, opts, instances, seeds, avoid=used)
    evaluator = PanelEvaluator(BenchmarkRef.of(name, opts), inner_settings(history.spec), workers=workers,
                               on_eval=on_eval)
    try:
        base = evaluator.evaluate_many(history.baseline, pairs)
        mine = evaluator.evaluate_many(stack, pairs)
    finally:
        evaluator.close()
    return paired_result(stack.describe(), name, base, mine)


SIGN_TOLERANCE = 1e-9  # differences this small are ties (a 1e-12 nudge is not a win)


def paired_result(label: str, benchmark: str, base: list[EvalResult], mine: list[EvalResult]) -> ReplayResult:
    diffs = np.array([b.primary - m.primary for b, m in zip(base, mine, strict=True)])
    ci = hierarchical_bootstrap_ci(diffs, [b.group for b in base], [b.instance for b in base], 0.95, 2000, seed=0)
    sign = sign_test(diffs, SIGN_TOLERANCE)
    return ReplayResult(label, benchmark,
                        tuple((f"{b.instance}@{b.seed}", b.primary, m.primary) for b, m in zip(base, mine, strict=True)),
                        ci.mean, ci.low, ci.high, sign.p, int(np.sum(diffs > SIGN_TOLERANCE)), ci.unit,
                        int(np.sum(diffs < -SIGN_TOLERANCE)), sign.n_dropped)
