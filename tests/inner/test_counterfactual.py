"""Counterfactual activation: a mechanism changed a trial only if the stack without it would have evaluated
another config (inner.counterfactual). Inert mechanisms record nothing; a real one does."""

from __future__ import annotations

from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.search_config import SearchConfig, Strategy
from bilevel.judge.benchmarks.bbob import BBOBObjective
from bilevel.mechanisms.library import load_source

IDENTITY = "def guide(ctx, state):\n    return {'step_scale': 1.0}\n"
FOCUS = "def guide(ctx, state):\n    return {'step_scale': 3.0, 'focus': ['x0']}\n"
NUDGE = """
def review(ctx, state, candidate):
    out = dict(candidate)
    out['x0'] = min(5.0, out['x0'] + 1e-12)
    return out
"""
OBJ = BBOBObjective(8, 3, 1)


def _shares(mechs: list[tuple[str, str]], strategy: Strategy = Strategy.GREEDY) -> dict[str, int]:
    r = run_inner(OBJ, mechs, InnerSettings(budget=20, search=SearchConfig(strategy=strategy)), 3)
    return {m: sum(m in t.changed_by for t in r.trials) for m, _ in mechs}


def test_identity_guide_and_nudge_change_nothing() -> None:
    assert _shares([("identity", IDENTITY), ("nudge", NUDGE)]) == {"identity": 0, "nudge": 0}


def test_guidance_the_base_ignores_never_counts() -> None:
    assert _shares([("focus", FOCUS)], Strategy.RANDOM) == {"focus": 0}
    assert _shares([("focus", FOCUS)], Strategy.GREEDY)["focus"] > 10


def test_an_inert_member_of_a_pair_is_seen_on_its_own() -> None:
    shares = _shares([("identity", IDENTITY), ("trust_region", load_source("trust_region"))])
    assert shares["identity"] == 0 and shares["trust_region"] > 0
