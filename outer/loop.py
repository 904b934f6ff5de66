"""The outer loop (Level 2, with Level 1.5): write mechanisms, check them, judge them, keep or revert.

Per generation: analyse the incumbent's traces on the search panel; ask the
author for candidates (and Level 1.5 for a config change); conformance-check
every new mechanism in the sandbox; judge each candidate against the
incumbent on the validation panel; confirm the best of those the judge passed
on the generation's fresh confirmation panel (``Judge.confirm``) and keep it
only if it holds there; otherwise keep the incumbent.

The loop is deterministic for a seed. Everything it learns is recorded
through a :class:`Recorder` with natural keys, so re-running a killed run
with the same spec records nothing twice and, with the evaluations cached,
ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bilevel.inner.space import Space
from bilevel.judge.decision import Verdict
from bilevel.judge.evaluate import Evaluator, Judge
from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.authors.base import Author, AuthorContext, Candidate
from bilevel.outer.errors import BudgetExhausted
from bilevel.outer.level15 import propose_config
from bilevel.outer.traces import TraceReport, analyse, group_results


class Recorder(Protocol):
    """Where the outer loop writes what happened (``runs.store`` implements it). Every write is idempotent."""

    def record_mechanism(self, mech: Mechanism, author: str, generation: int, parents: tuple[str, ...]) -> None: ...

    def record_candidate(self, generation: int, index: int, candidate: Candidate, parent: str) -> None: ...

    def conformance(self, mech_id: str) -> dict[str, Any] | None: ...

    def record_conformance(self, mech_id: str, report: dict[str, Any]) -> None: ...

    def record_verdict(self, generation: int, index: int, stack_key: str, verdict: Verdict) -> None: ...

    def record_event(self, key: str, kind: str, data: dict[str, Any]) -> None: ...


ConformanceCheck = Callable[[str], dict[str, Any]]  # source -> report json with "ok", "status", "message"


@dataclass(frozen=True)
class OuterSettings:
    """The outer loop's own knobs and hard budgets."""

    generations: int = 3
    candidates: int = 4
    level15: bool = True
    seed: int = 0
    wall_time_s: float | None = None
    sequential_candidates: bool = False  # ask the author for one candidate at a time, each after the last verdict


@dataclass
class OuterState:
    """What the loop carries from one generation to the next."""

    incumbent: Stack
    library: list[Mechanism]
    tried: set[str] = field(default_factory=set)
    lineage: list[dict[str, Any]] = field(default_factory=list)
    generations_done: int = 0
    candidates: int = 0
    kept: int = 0
    stopped: str = ""


def conformance_verdict(report: dict[str, Any], manifest_hash: str) -> Verdict:
    """The verdict of a candidate whose new mechanism failed the conformance check."""
    nan = math.nan
    return Verdict(keep=False, stage="conformance",
                   reason=f"rejected: conformance {report.get('status')}: {report.get('message', '')}"[:2000],
                   mean_improvement=nan, ci_low=nan, ci_high=nan, n_pairs=0, worst_group="",
                   worst_group_improvement=nan, changed_share=0.0, fired_share=0.0, fault_rate=1.0,
                   manifest_hash=manifest_hash)


class OuterLoop:
    """Runs the generations. Construct with its collaborators, then call :meth:`run` once."""

    def __init__(self, *, space: Space, search_panel: Sequence[PanelEntry], judge: Judge, evaluator: Evaluator,
                 author: Author, library: Sequence[Mechanism], settings: OuterSettings, recorder: Recorder,
                 conformance: ConformanceCheck, baseline: Stack,
                 progress: Callable[[str], None] = lambda _msg: None, started: float | None = None,
                 budget_check: Callable[[], str | None] | None = None) -> None:
        self.space = space
        self.search_panel = tuple(search_panel)
        self.judge = judge
        self.evaluator = evaluator
        self.author = author
        self.settings = settings
        self.recorder = recorder
        self.check = conformance
        self.progress = progress
        self.budget_check = budget_check  # other hard caps (LLM tokens, money, model time): a reason to stop
        self.baseline = baseline
        self.state = OuterState(incumbent=baseline, library=list(library))
        self._start = time.monotonic() if started is None else started

    def run(self) -> OuterState:
        for m in self.state.library:
            self.recorder.record_mechanism(m, "builtin", -1, ())
        try:
            for generation in range(self.settings.generations):
                self._generation(generation)
        except BudgetExhausted as stop:
            self.state.stopped = str(stop)
        return self.state

    def _check_budget(self, generation: int, index: int) -> None:
        """Stop cleanly (before a generation or a candidate) once the wall-time budget or another cap is spent."""
        limit = self.settings.wall_time_s
        if limit is not None and time.monotonic() - self._start >= limit:
            reason = f"wall-time budget of {limit:g} s reached in generation {generation}"
        else:
            other = self.budget_check() if self.budget_check is not None else None
            if other is None:
                return
            reason = f"{other} (in generation {generation})"
        self.recorder.record_event(f"budget:{generation}:{index}", "budget_stop",
                                   {"generation": generation, "candidate": index, "reason": reason})
        raise BudgetExhausted(reason)

    def _generation(self, generation: int) -> None:
        st = self.state
        self._check_budget(generation, -1)
        self.recorder.record_event(f"gen:{generation}:start", "generation_start",
                                   {"generation": generation, "incumbent": st.incumbent.key})
        self.progress(f"g{generation} of g0-g{self.settings.generations - 1}: traces of the incumbent")
        analysis = self._analyse(st.incumbent)
        passed: list[tuple[int, Candidate, Verdict]] = []
        entries: dict[int, dict[str, Any]] = {}
        if self.settings.sequential_candidates:  # one candidate at a time, each written after the last verdict
            index = 0
            for k in range(self.settings.candidates):
                for cand in self.author.propose(self._context(generation, analysis, k), 1):
                    self._judge_one(generation, index, cand, self.settings.candidates, passed, entries)
                    index += 1
            for cand in self._config_candidates(generation, analysis):
                self._judge_one(generation, index, cand, index + 1, passed, entries)
        else:
            candidates = self._candidates(generation, analysis)
            for index, cand in enumerate(candidates):
                self._judge_one(generation, index, cand, len(candidates), passed, entries)
        best = self._confirm(generation, passed, entries)
        if best is not None:
            st.incumbent = best.stack
            st.kept += 1
            known = {m.id for m in st.library}
            st.library.extend(m for m in best.new if m.id not in known)
        st.generations_done = generation + 1
        self.recorder.record_event(f"gen:{generation}:end", "generation_end",
                                   {"generation": generation, "incumbent": st.incumbent.key,
                                    "incumbent_stack": st.incumbent.to_json(),
                                    "kept": best.operation if best else None})

    def _judge_one(self, generation: int, index: int, cand: Candidate, total: int,
                   passed: list[tuple[int, Candidate, Verdict]], entries: dict[int, dict[str, Any]]) -> None:
        """Judge one candidate and add it to the lineage the author reads (``outcome`` is final at the
        generation's end: ``kept``, ``passed, not adopted`` or ``rejected``)."""
        st = self.state
        self._check_budget(generation, index)
        self.progress(f"g{generation} of g0-g{self.settings.generations - 1}: candidate {index + 1}/"
                      f"{total} ({cand.operation[:60]})")
        verdict = self._judge(generation, index, cand)
        st.candidates += 1
        st.tried.add(cand.stack.key)
        entries[index] = {"generation": generation, "index": index, "operation": cand.operation,
                          "keep": verdict.keep, "stage": verdict.stage, "reason": verdict.reason,
                          "outcome": "passed validation (the generation's winner is chosen at its end)"
                          if verdict.keep else f"rejected at {verdict.stage}"}
        st.lineage.append(entries[index])
        if verdict.keep:
            passed.append((index, cand, verdict))

    def _confirm(self, generation: int, passed: list[tuple[int, Candidate, Verdict]],
                 entries: dict[int, dict[str, Any]]) -> Candidate | None:
        """The generation's winner (the largest validation improvement among the candidates that passed
        validation) if the judge confirms it on the generation's fresh panel; None otherwise. Records the
        verdicts ``_judge`` held back: the winner's confirmation verdict, the others' validation ones; and
        sets each passing candidate's lineage outcome."""
        if not passed:
            return None
        index, winner, selection = max(passed, key=lambda p: (p[2].mean_improvement, -p[0]))
        for i, _, _ in passed:
            if i != index:
                entries[i]["outcome"] = "passed, not adopted (another candidate of its generation was better)"
        entries[index]["outcome"] = "kept"
        if self.judge.confirms:
            self.progress(f"g{generation} of g0-g{self.settings.generations - 1}: confirming the winner "
                          f"({winner.operation[:60]}) on fresh pairs")
            final = self.judge.confirm(generation, winner.stack, self.state.incumbent, selection)
            for i, cand, verdict in passed:
                self.recorder.record_verdict(generation, i, cand.stack.key, final if i == index else verdict)
            entries[index].update(keep=final.keep, stage=final.stage, reason=final.reason,
                                  outcome="kept" if final.keep else "rejected: passed validation but not confirmed "
                                                                     "on fresh pairs")
            if not final.keep:
                return None
        return winner

    def _analyse(self, stack: Stack) -> TraceReport:
        results = self.evaluator.evaluate_many(stack, self.search_panel, keep_trace=True)
        base = results if stack.key == self.baseline.key else self.evaluator.evaluate_many(
            self.baseline, self.search_panel, keep_trace=True)  # the store's cache has it from generation 0
        return analyse(self.space, [r.inner_result() for r in results], group_results(results, base))

    def _context(self, generation: int, analysis: TraceReport, start: int = 0) -> AuthorContext:
        st = self.state
        return AuthorContext(generation, self.settings.seed, st.incumbent, tuple(st.library), analysis,
                             frozenset(st.tried), tuple(dict(e) for e in st.lineage), start)

    def _candidates(self, generation: int, analysis: TraceReport) -> list[Candidate]:
        out = self.author.propose(self._context(generation, analysis), self.settings.candidates)
        return out + self._config_candidates(generation, analysis)

    def _config_candidates(self, generation: int, analysis: TraceReport) -> list[Candidate]:
        """Level 1.5's candidate (a search-config change), if it has one not tried yet."""
        st = self.state
        out: list[Candidate] = []
        if self.settings.level15:
            config = propose_config(st.incumbent, analysis, generation)
            if config is not None and config.stack.key not in st.tried:
                out.append(config)
        return out

    def _judge(self, generation: int, index: int, cand: Candidate) -> Verdict:
        incumbent = self.state.incumbent
        for m in cand.new:
            self.recorder.record_mechanism(m, cand.author, generation, cand.parents)
        self.recorder.record_candidate(generation, index, cand, incumbent.key)
        for m in cand.new:
            report = self._conformance(m)
            if not report.get("ok"):
                verdict = conformance_verdict(report, self.judge.manifest_hash)
                self.recorder.record_verdict(generation, index, cand.stack.key, verdict)
                return verdict
        verdict = self.judge.verdict(cand.stack, incumbent)
        if not (verdict.keep and self.judge.confirms):  # a passing one waits for the generation's winner
            self.recorder.record_verdict(generation, index, cand.stack.key, verdict)
        return verdict

    def _conformance(self, mech: Mechanism) -> dict[str, Any]:
        cached = self.recorder.conformance(mech.id)
        if cached is not None:
            return cached
        report = self.check(mech.source)
        self.recorder.record_conformance(mech.id, report)
        return report
