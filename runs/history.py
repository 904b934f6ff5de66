"""A finished run read back from the store: its stacks, its generations, and its sealed test panel.

Everything here reads the append-only store; the only thing it may add is
evaluations on the test panel (through the run's own evaluator cache), so a
second report or compare of the same run computes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bilevel.inner.search_config import SearchConfig
from bilevel.judge.evaluate import Comparison, EvalResult, Judge
from bilevel.judge.manifest import Manifest, verify_manifest
from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.evaluator import BenchmarkRef, PanelEvaluator
from bilevel.runs.driver import JudgeSetup, effective_spec, inner_settings, judge_setup
from bilevel.runs.spec import DEFAULTS, RunSpec, merge
from bilevel.runs.store import Store, StoreError


def run_spec(store: Store, run_id: str) -> RunSpec:
    """The run's effective spec, with sections added to the spec format since it was recorded filled
    in from today's defaults (so older runs and recipes still load)."""
    recorded = effective_spec(store, run_id).data
    return RunSpec(merge(copy.deepcopy(DEFAULTS), {k: v for k, v in recorded.items() if k in DEFAULTS},
                         f"run {run_id}"))


def stack_from_json(store: Store, run_id: str, data: dict[str, Any]) -> Stack:
    """Rebuild a :class:`Stack` from its recorded JSON form (mechanism ids resolved through the run's sources)."""
    mechs = tuple(store.mechanism(run_id, m["id"]) for m in data.get("mechanisms", []))
    return Stack(mechs, SearchConfig.from_json(data["search"]))


@dataclass(frozen=True)
class Generation:
    """One finished generation: the incumbent it ended with and what it kept (None: kept the old one)."""

    index: int
    incumbent: Stack
    kept: str | None


@dataclass(frozen=True)
class RunHistory:
    """What a run recorded, as stacks and numbers; built by :func:`load_history`."""

    run_id: str
    spec: RunSpec
    manifest_hash: str
    baseline: Stack
    generations: tuple[Generation, ...]
    candidates: tuple[dict[str, Any], ...]
    verdicts: tuple[dict[str, Any], ...]

    @property
    def benchmark(self) -> str:
        return str(self.spec["run"]["benchmark"])

    @property
    def author(self) -> str:
        return str(self.spec["run"]["author"])

    @property
    def final(self) -> Stack:
        """The incumbent after the last finished generation (the baseline if none finished)."""
        return self.generations[-1].incumbent if self.generations else self.baseline

    def kept_stacks(self) -> list[tuple[int, Stack]]:
        """(generation, stack) for every generation that replaced the incumbent, in order."""
        return [(g.index, g.incumbent) for g in self.generations if g.kept is not None]

    def candidate_stack(self, store: Store, key_prefix: str) -> tuple[Stack, dict[str, Any]]:
        """The judged candidate whose stack key starts with ``key_prefix`` (or the baseline's key)."""
        if self.baseline.key.startswith(key_prefix):
            return self.baseline, {"stack_key": self.baseline.key, "parent": "", "generation": -1,
                                   "operation": "baseline", "author": "-"}
        hits = {c["stack_key"]: c for c in self.candidates if c["stack_key"].startswith(key_prefix)}
        if not hits:
            raise StoreError(f"run {self.run_id} has no stack whose id starts with {key_prefix!r} "
                             "(ids are the bracketed keys of `bilevel lineage`)")
        if len(hits) > 1:
            raise StoreError(f"stack id {key_prefix!r} is ambiguous in run {self.run_id}: {sorted(hits)}")
        cand = next(iter(hits.values()))
        return stack_from_json(store, self.run_id, cand["stack"]), cand


def load_history(store: Store, run_id: str) -> RunHistory:
    """Read a run's generations and candidates (called by every command that looks at a run)."""
    row = store.run(run_id)
    spec = run_spec(store, run_id)
    baseline = Stack((), inner_settings(spec).search)
    gens = []
    for ev in store.events(run_id, "generation_end"):
        stack = stack_from_json(store, run_id, ev["incumbent_stack"])
        gens.append(Generation(int(ev["generation"]), stack, ev.get("kept")))
    return RunHistory(run_id, spec, row.manifest_hash, baseline, tuple(gens), tuple(store.candidates(run_id)),
                      tuple(store.verdicts(run_id)))


class TestBench:
    """A run's judge and evaluator, for evaluating stacks on its sealed test panel after the fact.

    Open with :func:`test_bench`; :meth:`compare` and :meth:`results` are
    called once per stack a view needs. Evaluations go through the run's
    cache in the store, so repeating a view is instant.
    """

    def __init__(self, setup: JudgeSetup, evaluator: PanelEvaluator) -> None:
        self.setup = setup
        self.evaluator = evaluator
        self.judge = Judge(setup.panels.validation, (), setup.thresholds, setup.manifest.hash, evaluator)

    @property
    def panel(self) -> tuple[PanelEntry, ...]:
        return tuple(self.setup.panels.test)

    def compare(self, stack: Stack, reference: Stack) -> Comparison:
        """``reference - stack`` paired on the test panel, with its bootstrap interval."""
        return self.judge.compare(stack, reference, self.panel)

    def results(self, stack: Stack) -> list[EvalResult]:
        return self.evaluator.evaluate_many(stack, self.panel)


@contextmanager
def test_bench(store: Store, run_id: str, workers: int | None = None,
               on_eval: Callable[[int, int], None] | None = None) -> Iterator[TestBench]:
    """Rebuild the run's judge (refusing a changed one) and an evaluator that caches into the run."""
    row = store.run(run_id)
    spec = run_spec(store, run_id)
    setup = judge_setup(spec)
    verify_manifest(Manifest.from_json(row.manifest), setup.manifest)
    evaluator = PanelEvaluator(BenchmarkRef.of(spec["run"]["benchmark"], spec["benchmark"]), inner_settings(spec),
                               cache=store.recorder(run_id), workers=workers or spec["run"]["workers"],
                               on_eval=on_eval)
    try:
        yield TestBench(setup, evaluator)
    finally:
        evaluator.close()


test_bench.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name
TestBench.__test__ = False  # type: ignore[attr-defined]


def stack_json_with_sources(stack: Stack) -> dict[str, Any]:
    """A stack with its mechanisms' sources: everything needed to run it outside the run store."""
    return {"mechanisms": [{"id": m.id, "name": m.name, "source": m.source} for m in stack.mechanisms],
            "search": stack.search.to_json()}


def stack_from_sources(data: dict[str, Any]) -> Stack:
    """The inverse of :func:`stack_json_with_sources` (each source is checked against its id)."""
    mechs = []
    for m in data["mechanisms"]:
        mech = Mechanism(str(m["name"]), str(m["source"]))
        if "id" in m and mech.id != m["id"]:
            raise StoreError(f"mechanism {m['name']!r}: source does not match its id {m['id']}")
        mechs.append(mech)
    return Stack(tuple(mechs), SearchConfig.from_json(data["search"]))
