"""The lineage the author reads says exactly what became of each candidate (issue 12 item 4).

The winner of a generation is KEPT only once confirmed; the other candidates that passed validation
read PASSED, NOT ADOPTED (never KEPT); a winner that fails confirmation reads REJECTED with that
reason; a candidate rejected on validation says at which stage. Per-group results give both stacks'
means and the difference.
"""

from __future__ import annotations

import math
from typing import Any

from bilevel.inner.search_config import SearchConfig
from bilevel.inner.space import Space
from bilevel.judge.decision import Verdict
from bilevel.judge.evaluate import EvalResult
from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.authors.base import Candidate
from bilevel.outer.authors.llm import lineage_line
from bilevel.outer.loop import OuterLoop, OuterSettings
from bilevel.outer.traces import analyse, group_results

SPACE = Space.from_json({"params": [{"name": "x0", "type": "float", "low": -5.0, "high": 5.0, "log": False}]})
MEANS = {"good": 0.5, "better": 0.9, "bad": -0.2}


def _verdict(keep: bool, stage: str, reason: str, mean: float = math.nan) -> Verdict:
    return Verdict(keep=keep, stage=stage, reason=reason, mean_improvement=mean, ci_low=0.0, ci_high=1.0,
                   n_pairs=4, worst_group="", worst_group_improvement=0.0, changed_share=0.5, fired_share=0.5,
                   fault_rate=0.0, manifest_hash="h")


class Judge:
    manifest_hash = "h"
    confirms = True

    def __init__(self, holds: bool) -> None:
        self.holds = holds

    def verdict(self, stack: Stack, incumbent: Stack) -> Verdict:
        name = stack.mechanisms[-1].name
        mean = MEANS[name]
        if mean > 0:
            return _verdict(True, "full", f"kept: mean improvement {mean} over 4 pairs", mean)
        return _verdict(False, "full", f"rejected: mean improvement {mean} over 4 pairs", mean)

    def confirm(self, generation: int, stack: Stack, incumbent: Stack, selection: Verdict) -> Verdict:
        if self.holds:
            return _verdict(True, "confirmation", "kept: held on 6 fresh pairs", selection.mean_improvement)
        return _verdict(False, "confirmation", "not confirmed on 6 fresh confirmation pairs: rejected", -0.1)


class Recorder:
    def __init__(self) -> None:
        self.verdicts: list[tuple[int, Verdict]] = []

    def record_mechanism(self, *args: Any) -> None: ...

    def record_candidate(self, *args: Any) -> None: ...

    def conformance(self, mech_id: str) -> dict[str, Any] | None:
        return {"ok": True}

    def record_conformance(self, *args: Any) -> None: ...

    def record_verdict(self, generation: int, index: int, stack_key: str, verdict: Verdict) -> None:
        self.verdicts.append((index, verdict))

    def record_event(self, *args: Any) -> None: ...


def _lines(holds: bool) -> list[str]:
    baseline = Stack((), SearchConfig())
    loop = OuterLoop(space=SPACE, search_panel=(), judge=Judge(holds), evaluator=None,  # type: ignore[arg-type]
                     author=None, library=(), settings=OuterSettings(), recorder=Recorder(),  # type: ignore[arg-type]
                     conformance=lambda s: {"ok": True}, baseline=baseline)
    passed: list[tuple[int, Candidate, Verdict]] = []
    entries: dict[int, dict[str, Any]] = {}
    for index, name in enumerate(MEANS):
        mech = Mechanism(name, f'"""{name}."""\n\ndef guide(ctx, state):\n    return None\n')
        cand = Candidate(Stack((mech,), baseline.search), f"llm: llm-g0c{index}-{name}: idea {name}", "llm", (mech,))
        loop._judge_one(0, index, cand, 3, passed, entries)
    loop._confirm(0, passed, entries)
    ctx = loop._context(1, analyse(SPACE, []))
    return [lineage_line(e) for e in ctx.lineage]


def test_kept_passed_not_adopted_and_rejected_are_told_apart() -> None:
    good, better, bad = _lines(holds=True)
    assert better == "- g0 llm: llm-g0c1-better: idea better: KEPT (kept: held on 6 fresh pairs)"
    assert good.startswith("- g0 llm: llm-g0c0-good: idea good: PASSED, NOT ADOPTED (another candidate of its "
                           "generation was better) (validation passed: mean improvement 0.5")
    assert bad == "- g0 llm: llm-g0c2-bad: idea bad: REJECTED AT FULL (rejected: mean improvement -0.2 over 4 pairs)"


def test_a_winner_that_fails_confirmation_is_rejected_not_kept() -> None:
    good, better, _ = _lines(holds=False)
    assert better.startswith("- g0 llm: llm-g0c1-better: idea better: REJECTED: PASSED VALIDATION BUT NOT "
                             "CONFIRMED ON FRESH PAIRS (not confirmed on 6 fresh confirmation pairs")
    assert "KEPT" not in good and "PASSED, NOT ADOPTED" in good


def _result(instance: str, group: str, primary: float) -> EvalResult:
    return EvalResult(instance=instance, group=group, seed=0, primary=primary, subscores={}, n_trials=1,
                      hook_calls=0, hook_faults=0, fired_by={}, changed_by={}, best_so_far=(primary,))


def test_per_group_results_give_both_means_and_the_difference() -> None:
    incumbent = [_result("f1_i1", "f1", 1.0), _result("f1_i2", "f1", 2.0), _result("f8_i1", "f8", 5.0)]
    baseline = [_result("f1_i1", "f1", 2.0), _result("f1_i2", "f1", 3.0), _result("f8_i1", "f8", 4.0)]
    groups = group_results(incumbent, baseline)
    assert [(g.group, g.n_pairs, g.incumbent_mean, g.baseline_mean, g.improvement) for g in groups] == [
        ("f1", 2, 1.5, 2.5, 1.0), ("f8", 1, 5.0, 4.0, -1.0)]
    line = analyse(SPACE, [], groups).lines()[-1]
    assert line.startswith("per group (mean score on the search panel, lower is better; improvement = baseline - ")
    assert "f1: incumbent 1.5, baseline 2.5, improvement +1 (n=2 pairs); f8: incumbent 5, baseline 4, " \
           "improvement -1 (n=1 pairs)" in line
