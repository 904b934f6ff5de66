"""The inner loop's fixed rules: keep only strict improvements, bounded rejections, faults recorded as data."""

from __future__ import annotations

import math

from sphere_objective import SPACE, Sphere

from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.objective import ObjectiveError
from bilevel.inner.space import Config, Space

REJECT_ALL = "def review(ctx, state, candidate):\n    return 'never good enough'\n"
BAD_PROPOSAL = "def propose(ctx, state):\n    return {'x': 5.0}\n"
ALWAYS_PROPOSE = """
import spacekit

def propose(ctx, state):
    return spacekit.decode(ctx['space'], [0.5, 0.5, 0.2, 0.9, 0.1])
"""


def test_keep_only_strict_improvements_and_record_failures() -> None:
    obj = Sphere()
    result = run_inner(obj, [], InnerSettings(budget=40), seed=1)
    best = math.inf
    for t in result.trials:
        assert t.source == "base:greedy"
        if t.score is None:
            assert not t.kept and "x too large" in t.error
            continue
        assert t.kept == (t.score < best)
        best = min(best, t.score)
    assert [t.config for t in result.trials] == obj.seen


def test_rejections_are_bounded_and_recorded() -> None:
    result = run_inner(Sphere(), [("rej", REJECT_ALL)], InnerSettings(budget=5, max_rejections=3), seed=2)
    for t in result.trials:
        assert t.rejections == 3
        assert "rejection bound 3 hit" in t.error
        assert sum(1 for e in t.hooks if e.hook == "review" and e.changed) == 3


def test_invalid_proposals_are_contract_violations_and_the_base_proposer_steps_in() -> None:
    result = run_inner(Sphere(), [("bad", BAD_PROPOSAL)], InnerSettings(budget=4), seed=3)
    first = result.trials[0]
    assert first.source == "base:greedy"
    (event,) = [e for e in first.hooks if e.mechanism == "bad"]
    assert event.status == "contract_violation" and "outside" in event.message
    SPACE.validate(first.config)


def test_the_first_proposing_mechanism_wins() -> None:
    mechs = [("always", ALWAYS_PROPOSE), ("bad", BAD_PROPOSAL)]
    result = run_inner(Sphere(), mechs, InnerSettings(budget=3), seed=4)
    for t in result.trials:
        assert t.source == "mechanism:always"
        assert not [e for e in t.hooks if e.mechanism == "bad"], "the second mechanism was asked after a proposal"
        assert math.isclose(sum(t.config["mix"].values()), 1.0)


def test_a_repeat_offender_is_disabled_after_max_faults() -> None:
    result = run_inner(Sphere(), [("bad", BAD_PROPOSAL)], InnerSettings(budget=8), seed=3)
    asked = [t.index for t in result.trials if any(e.mechanism == "bad" for e in t.hooks)]
    assert asked == [0, 1, 2], "the mechanism should be disabled after Limits.max_faults = 3 faults"


def test_ask_tell_makes_the_same_trials_as_run() -> None:
    from bilevel.inner.loop import InnerLoop
    from bilevel.inner.records import Trial
    from bilevel.mechanisms.library import load_source

    mechs = [(n, load_source(n)) for n in ("tabu", "trust_region", "elite_crossover")]
    settings = InnerSettings(budget=20, max_rejections=2)
    whole = run_inner(Sphere(), mechs, settings, seed=5)
    loop = InnerLoop.driven(SPACE, mechs, settings, seed=5)
    loop.open()
    try:
        obj = Sphere()
        for t in range(settings.budget):
            config, source = loop.ask()
            try:
                score: float | None = obj.evaluate(config)
            except ObjectiveError:
                score = None
            best = loop.incumbent.score if loop.incumbent and loop.incumbent.score is not None else math.inf
            loop.tell(Trial(t, config, score, score is not None and score < best, source))
    finally:
        loop.close()
    assert len({repr(t.config) for t in whole.trials}) > 10, "the run should explore, or the check is vacuous"
    assert [(t.config, t.source, t.kept) for t in loop.trials] == [(t.config, t.source, t.kept) for t in whole.trials]


class Flat:
    """A test objective with the same score everywhere: every trial after the first ties the incumbent."""

    @property
    def space(self) -> Space:
        return SPACE

    def evaluate(self, config: Config) -> float:
        return 2.5


def test_a_tie_with_the_incumbent_is_not_kept() -> None:
    result = run_inner(Flat(), [], InnerSettings(budget=6), seed=3)
    assert [t.kept for t in result.trials] == [True, False, False, False, False, False]
    assert [t.index for t in result.trials if t.kept] == [0]


def test_the_keep_rule_is_strict_and_skips_failures() -> None:
    from bilevel.inner.records import Trial, beats_incumbent

    inc = Trial(0, {}, 1.0, True, "x")
    assert beats_incumbent(1.0, None)
    assert not beats_incumbent(1.0, inc)
    assert beats_incumbent(0.999, inc)
    assert not beats_incumbent(None, inc)
    assert not beats_incumbent(None, None)


BAD_CENTRE = "def guide(ctx, state):\n    return {'centre': {'x': 5.0, 'y': 0.0, 'mix': {'a': 1.0, 'b': 0.0, 'c': 0.0}}}\n"


def test_a_centre_outside_the_space_is_a_contract_fault() -> None:
    result = run_inner(Sphere(), [("c", BAD_CENTRE)], InnerSettings(budget=3), seed=2)
    guides = [h for t in result.trials for h in t.hooks if h.hook == "guide"]
    assert guides and guides[0].status == "contract_violation" and "centre" in guides[0].message


def test_guidance_centre_is_checked_and_the_first_one_wins() -> None:
    import pytest

    from bilevel.mechanisms.contract import ContractError, check_guidance, merge_guidance

    with pytest.raises(ContractError, match="centre"):
        check_guidance({"centre": {"x": 1.0}}, ["x", "y"])
    a, b = {"centre": {"x": 1}}, {"centre": {"x": 2}, "step_scale": 2.0}
    assert merge_guidance([a, b]) == {"centre": {"x": 1}, "step_scale": 2.0}
