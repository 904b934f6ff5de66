"""Round trips to the sandbox worker per trial, counted at the session (issue 15 item 1), not timed.

A trial's calls go to the worker in as few exchanges as the loop's own decisions allow: the last
trial's ``observe`` carries the next trial's guides and proposals, the reviews carry the dry calls of
the counterfactual check, and the next trial's reviews go with the observe too where the loop predicted
its guidance (``inner.speculation``). The step-by-step protocol made 4.9 exchanges per trial for the
three mechanisms below (guide, guide, observe x3, review, and a dry review per guide).
"""

from __future__ import annotations

from bilevel.inner.loop import InnerLoop, InnerSettings, SessionPool
from bilevel.judge.benchmarks import get_benchmark
from bilevel.mechanisms.library import load_source
from bilevel.sandbox import Outcome

BENCH = get_benchmark("bbob", {"functions": [8], "dimensions": [5], "instance_ids": [1]})
BUDGET = 20
REVIEW_ONLY = '''
def review(ctx, state, candidate):
    return None
'''
COUNTING = '''
import random


def guide(ctx, state):
    return {"step_scale": 0.5 + random.randrange(8) / 8}


def propose(ctx, state):
    if ctx["guidance"].get("step_scale") == 42.0:  # the test's probe, after the run
        return {"reviews": state.get("reviews", 0)}
    return None


def review(ctx, state, candidate):
    state["reviews"] = state.get("reviews", 0) + 1
    return None
'''
OBSERVE_ONLY = '''
def observe(ctx, state, trial):
    state["n"] = state.get("n", 0) + 1
'''


class _Counted(InnerLoop):
    """An inner loop that reads the session's counters (and, optionally, asks a probe) before it ends."""

    counters: tuple[int, int, int] = (0, 0, 0)  # speculations, mispredictions, inconsistencies
    probe: Outcome | None = None

    def _stop_sandbox(self) -> None:
        if self.session is not None:
            s = self.session
            self.counters = (s.speculations, s.mispredictions, s.inconsistencies)
            if "count" in s.active:
                self.probe = s.call("count", "propose", BUDGET, {"step_scale": 42.0}, dry=True)
        super()._stop_sandbox()


def _round_trips(stack: list[tuple[str, str]], seed: int = 2, speculate: bool = True) -> tuple[int, _Counted]:
    pool = SessionPool()
    settings = InnerSettings(budget=BUDGET, speculate=speculate)
    try:
        loop = _Counted(BENCH.objective(BENCH.instances()[0], seed), stack, settings, seed, pool)
        loop.run()
    finally:
        pool.close()
    assert loop.session is None and len(loop.trials) == BUDGET
    return loop.round_trips, loop


def test_guides_and_observers_take_one_exchange_per_trial() -> None:
    stack = [(m, load_source(m)) for m in ("ucb_bandit", "trust_region")] + [("obs", OBSERVE_ONLY)]
    n, loop = _round_trips(stack)
    # the first trial's guides, then one exchange per trial: its observe with the next trial's guides
    assert n == BUDGET + 1
    assert all(len([e for e in t.hooks if e.hook == "observe"]) == 3 for t in loop.trials)
    assert all(len([e for e in t.hooks if e.hook == "guide"]) == 2 for t in loop.trials)
    assert loop.counters == (0, 0, 0)  # no reviewer: nothing to predict


def test_guides_and_a_review_take_about_one_exchange_per_trial() -> None:
    stack = [(m, load_source(m)) for m in ("tabu", "ucb_bandit", "trust_region")]
    n, loop = _round_trips(stack)
    reviews = sum(1 for t in loop.trials for e in t.hooks if e.hook == "review")
    assert reviews >= BUDGET
    speculations, mispredictions, inconsistencies = loop.counters
    # the first trial's guides and its reviews, then per trial its observe with the next trial's guides and
    # predicted reviews (with their dry calls); a misprediction or a rejection adds the reviews' exchange
    extra = sum(t.rejections for t in loop.trials)
    assert speculations == BUDGET - 1 and inconsistencies == 0
    assert mispredictions <= BUDGET // 2, mispredictions  # the prediction holds most of the time
    assert BUDGET + 2 <= n <= BUDGET + 2 + extra + mispredictions, n


def test_by_default_a_review_takes_a_second_exchange_and_nothing_is_predicted() -> None:
    stack = [(m, load_source(m)) for m in ("tabu", "ucb_bandit", "trust_region")]
    n, loop = _round_trips(stack, speculate=False)
    assert InnerSettings().speculate is False  # the prediction costs more host time here than it saves
    assert loop.counters[:2] == (0, 0)
    # per trial: observe + next guides, then the reviews with the dry calls; a rejection or a second round of
    # dry calls adds one
    extra = sum(t.rejections for t in loop.trials)
    assert 2 * BUDGET <= n <= 2 * BUDGET + 1 + extra + BUDGET // 4, n


def test_a_review_only_stack_is_always_predicted() -> None:
    stack = [("rev", REVIEW_ONLY)]
    n, loop = _round_trips(stack)
    assert loop.counters == (BUDGET - 1, 0, 0)
    # no guide: the first trial's reviews, then one exchange per trial (the last one's observe alone)
    assert n == BUDGET + 1
    assert all([e.hook for e in t.hooks] == ["review"] for t in loop.trials)


def test_a_misprediction_never_runs_a_review_the_loop_does_not_make() -> None:
    """A guide whose answer is a coin toss among eight (predicted about half the time) and a reviewer that
    counts its calls in ``state``: the count is the loop's number of review events, not one more."""
    stack = [("count", COUNTING), ("ucb_bandit", load_source("ucb_bandit"))]
    _, loop = _round_trips(stack)
    speculations, mispredictions, inconsistencies = loop.counters
    assert speculations == BUDGET - 1 and inconsistencies == 0
    assert 0 < mispredictions < speculations  # both paths taken
    reviews = sum(1 for t in loop.trials for e in t.hooks if e.mechanism == "count" and e.hook == "review")
    assert reviews == BUDGET
    assert loop.probe is not None and loop.probe.ok and loop.probe.value == {"reviews": reviews}
