"""Round trips to the sandbox worker per trial, counted at the session (issue 15 item 1), not timed.

A trial's calls go to the worker in as few exchanges as the loop's own decisions allow: the last
trial's ``observe`` carries the next trial's guides and proposals, the reviews carry the dry calls of
the counterfactual check. The step-by-step protocol made 4.9 exchanges per trial for the three
mechanisms below (guide, guide, observe x3, review, and a dry review per guide).
"""

from __future__ import annotations

from bilevel.inner.loop import InnerLoop, InnerSettings, SessionPool
from bilevel.judge.benchmarks import get_benchmark
from bilevel.mechanisms.library import load_source

BENCH = get_benchmark("bbob", {"functions": [8], "dimensions": [5], "instance_ids": [1]})
BUDGET = 20
OBSERVE_ONLY = '''
def observe(ctx, state, trial):
    state["n"] = state.get("n", 0) + 1
'''


def _round_trips(stack: list[tuple[str, str]], seed: int = 2) -> tuple[int, InnerLoop]:
    pool = SessionPool()
    try:
        loop = InnerLoop(BENCH.objective(BENCH.instances()[0], seed), stack, InnerSettings(budget=BUDGET), seed, pool)
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


def test_guides_and_a_review_take_two_exchanges_per_trial() -> None:
    stack = [(m, load_source(m)) for m in ("tabu", "ucb_bandit", "trust_region")]
    n, loop = _round_trips(stack)
    reviews = sum(1 for t in loop.trials for e in t.hooks if e.hook == "review")
    assert reviews >= BUDGET
    # per trial: observe + next guides, then the reviews with the dry calls; a rejection or a second round of
    # dry calls adds one
    extra = sum(t.rejections for t in loop.trials)
    assert 2 * BUDGET <= n <= 2 * BUDGET + extra + BUDGET // 4, n
