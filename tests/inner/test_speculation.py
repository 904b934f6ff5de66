"""Predicted reviews (``inner.speculation``) change nothing: the same runs with the prediction switched off
give the same trials (configs, scores, every hook event, ``changed_by``) and the same faults, also where
reviews crash (and a crash disables the reviewer), reject, change the candidate before the last review,
or where the guidance is a coin toss that the prediction often misses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bilevel.inner.loop import InnerLoop, InnerSettings, SessionPool
from bilevel.inner.speculation import Speculation, _best_first
from bilevel.judge.benchmarks import get_benchmark
from bilevel.mechanisms.library import load_source

BENCH = get_benchmark("bbob", {"functions": [8], "dimensions": [5], "instance_ids": [1]})
BUDGET = 24

COIN = '''
import random


def guide(ctx, state):
    return {"step_scale": 0.5 + random.randrange(6) / 6}
'''
FLAKY = '''
def review(ctx, state, candidate):
    state["n"] = state.get("n", 0) + 1
    if ctx["trial_index"] % 4 == 1:
        raise ValueError("flaky review")
    return None
'''
PICKY = '''
import random


def review(ctx, state, candidate):
    state["n"] = state.get("n", 0) + 1
    if random.random() < 0.3:
        return "not this one"
    return None
'''
STACKS: dict[str, list[str]] = {
    "crashing_reviewer": ["coin", "flaky", "tabu"],
    "rejecting_reviewer": ["ucb_bandit", "picky", "trust_region"],
    "changed_before_the_last_review": ["tabu", "ucb_bandit", "flaky", "trust_region"],
    "guide_propose_reviews": ["restart_plateau", "lhs_design", "sham", "tabu", "picky"],
}
SOURCES = {"coin": COIN, "flaky": FLAKY, "picky": PICKY}


class _Counted(InnerLoop):
    counters: tuple[int, int, int] = (0, 0, 0)

    def _stop_sandbox(self) -> None:
        if self.session is not None:
            s = self.session
            self.counters = (s.speculations, s.mispredictions, s.inconsistencies)
        super()._stop_sandbox()


def _run(names: list[str], seed: int, speculate: bool = True) -> tuple[str, _Counted]:
    stack = [(m, SOURCES[m] if m in SOURCES else load_source(m)) for m in names]
    pool = SessionPool()
    settings = InnerSettings(budget=BUDGET, speculate=speculate)
    try:
        loop = _Counted(BENCH.objective(BENCH.instances()[0], seed), stack, settings, seed, pool)
        result = loop.run()
    finally:
        pool.close()
    return json.dumps(result.to_json(), sort_keys=True), loop


@pytest.mark.parametrize("name", sorted(STACKS))
def test_predicted_reviews_change_nothing(name: str) -> None:
    with_prediction, loop = _run(STACKS[name], seed=4)
    speculations, mispredictions, inconsistencies = loop.counters
    assert speculations > 0 and mispredictions < speculations and inconsistencies == 0
    without, plain = _run(STACKS[name], seed=4, speculate=False)
    assert plain.counters == (0, 0, 0)
    assert with_prediction == without
    assert plain.round_trips >= loop.round_trips


def test_crashes_disable_the_reviewer_as_without_prediction() -> None:
    result, loop = _run(STACKS["crashing_reviewer"], seed=4)
    crashes = [e for t in loop.trials for e in t.hooks if e.mechanism == "flaky" and e.status == "crash"]
    assert crashes and loop.counters[0] > loop.counters[1]
    disabled = [f for f in json.loads(result)["mechanism_faults"] if f["mechanism"] == "flaky"]
    assert disabled and disabled[0]["hook"] == "disabled" and "3 faults" in disabled[0]["message"]


def test_alternatives_come_most_recent_first() -> None:
    assert _best_first([3, 2], 10) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert _best_first([5, 5, 5], 4)[0] == (0, 0, 0) and len(_best_first([5, 5, 5], 4)) == 4
    assert _best_first([], 3) == [()]


def test_the_prediction_draws_on_recent_distinct_answers() -> None:
    spec = Speculation()
    for i in range(15):
        spec.seen({"a": {"step_scale": float(i % 3)}, "b": {}})
    options: Any = spec._options(["a", "b"])
    # a cycle of three: the answer was always the third most recent, so that one (0.0) comes first
    assert options == [[{"step_scale": 0.0}, {"step_scale": 2.0}, {"step_scale": 1.0}], [{}]]
    spec = Speculation()
    for i in range(4):
        spec.seen({"a": {"step_scale": float(i)}})
    assert spec._options(["a"]) == [[{"step_scale": 3.0}, {"step_scale": 2.0}, {"step_scale": 1.0},
                                     {"step_scale": 0.0}]]  # nothing learnt yet: the most recent first
    assert spec._options(["c"]) is None
