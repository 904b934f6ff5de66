"""Runs or lineages side by side on their sealed test panels.

For each subject (a whole run, i.e. its final stack, or a lineage, i.e. one
stack of a run and the kept stacks that led to it): the final improvement
over the baseline inner loop with its bootstrap interval, the per-generation
curve (each generation's incumbent against the baseline, on the test panel),
and cost-normalised gains (per 1000 tokens, per dollar, per 1000 trials).
Subjects judged by different judges (manifest hashes) or on different
benchmarks are compared with a warning, since their numbers do not share a
scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from bilevel.judge.evaluate import Comparison
from bilevel.judge.stack import Stack
from bilevel.runs.history import RunHistory, load_history, test_bench
from bilevel.runs.ledger import Ledger, ledger
from bilevel.runs.llm_setup import inner_mode
from bilevel.runs.rsi import RsiMetrics, rsi_metrics
from bilevel.runs.store import Store, StoreError


@dataclass(frozen=True)
class Subject:
    """One column of a comparison: a run's final stack, or one stack of a run's lineage."""

    label: str
    run_id: str
    benchmark: str
    manifest_hash: str
    stack: Stack
    final: Comparison
    curve: tuple[tuple[int, Comparison], ...]  # (generation, incumbent vs baseline) on the test panel
    ledger: Ledger
    rsi: RsiMetrics
    scores: tuple[tuple[str, str, int, float], ...] = ()  # (group, instance, seed, score) per test pair
    confidence: float = 0.95
    n_boot: int = 2000
    llm_inner: str = "-"  # [llm] inner of the run, in words (runs.llm_setup.inner_mode); "-": no model

    def per_ktoken(self) -> float:
        return 1000.0 * self.final.mean / self.ledger.tokens if self.ledger.tokens else math.nan

    def per_dollar(self) -> float:
        return self.final.mean / self.ledger.dollars if self.ledger.dollars else math.nan

    def per_ktrial(self) -> float:
        return 1000.0 * self.final.mean / self.ledger.trials if self.ledger.trials else math.nan


def _lineage_chain(history: RunHistory, key: str) -> list[tuple[int, str]]:
    """(generation, stack key) of the kept ancestors of ``key`` and ``key`` itself, oldest first."""
    by_key = {c["stack_key"]: c for c in history.candidates}
    chain = []
    while key in by_key:
        c = by_key[key]
        chain.append((int(c["generation"]), key))
        key = c["parent"]
    return list(reversed(chain))


def subject(store: Store, run_id: str, lineage: str | None = None,
            progress: Callable[[str], None] = lambda _m: None,
            on_eval: Callable[[int, int], None] | None = None) -> Subject:
    """Evaluate one subject on its run's test panel (cached in the run; called once per column)."""
    history = load_history(store, run_id)
    if lineage is None:
        points = [(g.index, g.incumbent) for g in history.generations]
        stack, label = history.final, run_id
    else:
        stack, cand = history.candidate_stack(store, lineage)
        points = [(gen, history.candidate_stack(store, k)[0]) for gen, k in _lineage_chain(history, cand["stack_key"])]
        label = f"{run_id}:{stack.key[:8]}"
    with test_bench(store, run_id, on_eval=on_eval) as bench:
        progress(f"{label}: test panel ({len(bench.panel)} pairs)")
        final = bench.compare(stack, history.baseline)
        curve = tuple((gen, bench.compare(s, history.baseline)) for gen, s in points)
        scores = tuple((r.group, r.instance, r.seed, r.primary) for r in bench.results(stack))
    judge = history.spec["judge"]
    return Subject(label, run_id, history.benchmark, history.manifest_hash, stack, final, curve,
                   ledger(store, run_id), rsi_metrics(store, run_id, history), scores,
                   float(judge["confidence"]), int(judge["n_boot"]), inner_mode(history.spec.to_json()))


@dataclass(frozen=True)
class PairedDifference:
    """``first`` minus ``second`` per test pair (positive: ``second`` scores lower, i.e. better)."""

    first: str
    second: str
    mean: float
    low: float
    high: float
    unit: str
    pairs: int


def paired_differences(subjects: list[Subject]) -> list[PairedDifference]:
    """For every two subjects judged by the same judge (same manifest: same test panel and scoring), the
    paired difference of their scores per test pair with a cluster bootstrap interval (groups, then
    instances, then seeds: ``judge.stats.hierarchical_bootstrap_ci``). Others are left out."""
    from bilevel.judge.stats import hierarchical_bootstrap_ci

    out = []
    for i, a in enumerate(subjects):
        for b in subjects[i + 1:]:
            if a.manifest_hash != b.manifest_hash or not a.scores:
                continue
            theirs = {(g, inst, seed): v for g, inst, seed, v in b.scores}
            keys = [(g, inst, seed) for g, inst, seed, _ in a.scores]
            if set(keys) != set(theirs):
                continue
            diffs = [v - theirs[(g, inst, seed)] for g, inst, seed, v in a.scores]
            ci = hierarchical_bootstrap_ci(diffs, [k[0] for k in keys], [k[1] for k in keys],
                                           a.confidence, a.n_boot, seed=0)
            out.append(PairedDifference(a.label, b.label, ci.mean, ci.low, ci.high, ci.unit, len(diffs)))
    return out


def find_lineage_run(store: Store, run_ids: list[str], key_prefix: str) -> str:
    """The run (among ``run_ids``, or all runs of the store if none given) holding stack ``key_prefix``."""
    pool = run_ids or store.run_ids()
    hits = [r for r in pool if any(c["stack_key"].startswith(key_prefix) for c in store.candidates(r))]
    if not hits:
        raise StoreError(f"no run among {', '.join(pool) or '(none)'} has a stack {key_prefix!r}")
    originals = [r for r in hits if not store.events(r, "replay_of")]
    if originals:  # a replay repeats its original's stacks: the id means the original's
        hits = originals
    if len(hits) > 1:
        raise StoreError(f"stack {key_prefix!r} is in several runs ({', '.join(hits)}); write RUN:ID")
    return hits[0]


def warnings(subjects: list[Subject]) -> list[str]:
    """Why the columns may not be comparable: different judges or different benchmarks."""
    out = []
    judges = {s.manifest_hash for s in subjects}
    if len(judges) > 1:
        out.append("WARNING: different judges (manifest hashes " + ", ".join(
            f"{s.label}={s.manifest_hash[:12]}" for s in subjects) + "); their test panels and scores differ")
    benches = {s.benchmark for s in subjects}
    if len(benches) > 1:
        out.append("WARNING: different benchmarks (" + ", ".join(f"{s.label}={s.benchmark}" for s in subjects)
                   + "); improvements are on different scales")
    return out


def _n(x: float, fmt: str = "+.4f") -> str:
    return "n/a" if math.isnan(x) else format(x, fmt)


def table_lines(subjects: list[Subject]) -> list[str]:
    """The comparison as text: a summary table, the paired differences between subjects that share a
    judge, per-generation curves and the RSI metrics (the warnings are separate: ``warnings``)."""
    lines = []
    lines.append("subject\tbenchmark\tauthor_stack\ttest_improvement\tci_low\tci_high\tpairs\t"
                 "gain_per_ktoken\tgain_per_dollar\tgain_per_ktrial\ttokens\tdollars\ttrials")
    for s in subjects:
        lines.append("\t".join([s.label, s.benchmark, s.stack.describe(), _n(s.final.mean), _n(s.final.ci_low),
                                _n(s.final.ci_high), str(s.final.n_pairs), _n(s.per_ktoken(), "+.6f"),
                                _n(s.per_dollar(), "+.4f"), _n(s.per_ktrial(), "+.6f"), str(s.ledger.tokens),
                                f"{s.ledger.dollars:.4f}", str(s.ledger.trials)]))
    if len({s.llm_inner for s in subjects}) > 1:  # a study arm: who proposes in the inner loop
        lines.append("[llm] inner differs: " + "; ".join(f"{s.label} = {s.llm_inner}" for s in subjects))
    paired = paired_differences(subjects)
    if paired:
        lines.append("")
        lines.append("paired differences between subjects on the same test pairs (first - second score; "
                     "positive: the second is better), cluster bootstrap interval:")
        lines.append("first\tsecond\tdifference\tci_low\tci_high\tci_unit\tpairs")
        lines.extend("\t".join([p.first, p.second, _n(p.mean), _n(p.low), _n(p.high), p.unit, str(p.pairs)])
                     for p in paired)
    elif len(subjects) > 1:
        lines.append("")
        lines.append("paired differences: none (no two subjects share a judge and test panel)")
    lines.append("")
    lines.append("per-generation test improvement over the baseline (incumbent after each generation):")
    for s in subjects:
        cells = [f"g{g}: {c.mean:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}]" for g, c in s.curve] or ["(none)"]
        lines.append(f"  {s.label}: " + "; ".join(cells))
    lines.append("")
    lines.append("RSI metrics:")
    for s in subjects:
        lines.append(f"  {s.label}:")
        lines.extend("    " + x for x in s.rsi.lines())
    return lines
