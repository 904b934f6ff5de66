"""Calls made ahead in one exchange (sandbox.steps): where the worker stops, blame inside a step, the safety net."""

from __future__ import annotations

import textwrap
from typing import Any

from bilevel.sandbox import Limits, SandboxSession, Status

SPACE: dict[str, Any] = {"params": [{"name": "x", "type": "float", "low": 0.0, "high": 1.0, "log": False}]}

GUIDE = textwrap.dedent('''
    def guide(ctx, state):
        return {"step_scale": 0.5}

    def observe(ctx, state, trial):
        state["n"] = state.get("n", 0) + 1
''')
NONE = textwrap.dedent('''
    def propose(ctx, state):
        state["asked"] = state.get("asked", 0) + 1
        return None
''')
PROPOSE = textwrap.dedent('''
    def propose(ctx, state):
        return {"x": 0.25 * ctx["guidance"].get("step_scale", 1.0)}
''')
LAST = textwrap.dedent('''
    def propose(ctx, state):
        return {"x": 0.9}
''')
HANG = textwrap.dedent('''
    def guide(ctx, state):
        if ctx["trial_index"] >= 1:
            while True:
                pass
        return None
''')
TRIAL = {"index": 0, "config": {"x": 0.5}, "score": 1.0, "kept": True, "source": "base:greedy"}


def test_the_worker_stops_at_the_first_proposal_and_the_loop_takes_the_calls_made_ahead() -> None:
    stack = [("g", GUIDE), ("none", NONE), ("p", PROPOSE), ("last", LAST)]
    with SandboxSession(stack, SPACE, seed=1, budget=5) as s:
        s.start()
        s.guide_all(0)
        before = s.round_trips
        observed = s.observe(TRIAL, ahead=1)
        assert set(observed) == {"g"} and observed["g"].ok
        assert s.round_trips == before + 1
        # made ahead: g's guide, then the proposals up to the first that is not None; not "last"
        assert s.has_ahead("none", "propose", 1, {"step_scale": 0.5}, None, dry=False)
        assert s.has_ahead("p", "propose", 1, {"step_scale": 0.5}, None, dry=False)
        assert not s.has_ahead("last", "propose", 1, {"step_scale": 0.5}, None, dry=False)
        guides = s.guide_all(1)
        assert guides["g"].value == {"step_scale": 0.5}
        assert s.call("none", "propose", 1, {"step_scale": 0.5}).value is None
        assert s.call("p", "propose", 1, {"step_scale": 0.5}).value == {"x": 0.125}
        assert s.round_trips == before + 1, "the loop's calls were answered from the calls made ahead"
        assert s.inconsistencies == 0


def test_a_hang_in_a_guide_made_ahead_is_blamed_on_its_mechanism_and_the_others_go_on() -> None:
    limits = Limits(call_timeout_s=1.0)
    with SandboxSession([("g", GUIDE), ("hang", HANG)], SPACE, seed=1, budget=5, limits=limits) as s:
        s.start()
        s.guide_all(0)
        observed = s.observe(TRIAL, ahead=1)
        assert observed["g"].ok
        guides = s.guide_all(1)
        assert guides["hang"].status is Status.TIMEOUT
        assert guides["g"].ok and guides["g"].value == {"step_scale": 0.5}
        assert s.disabled_reason("hang") is not None and s.disabled_reason("g") is None
        nxt = s.observe({**TRIAL, "index": 1}, ahead=2)  # a fresh worker, the history replayed
        assert nxt["g"].ok
        assert s.guide_all(2)["g"].ok


def test_a_call_with_other_inputs_than_the_one_made_ahead_restarts_the_worker() -> None:
    with SandboxSession([("g", GUIDE), ("none", NONE)], SPACE, seed=1, budget=5) as s:
        s.start()
        s.guide_all(0)
        s.observe(TRIAL, ahead=1)
        s.guide_all(1)
        pid = s.worker_pid
        out = s.call("none", "propose", 1, {"step_scale": 0.7})  # not the guidance the worker merged
        assert out.ok and out.value is None
        assert s.inconsistencies == 1
        assert s.worker_pid != pid, "the worker whose state saw the call made ahead was replaced"


COUNT_REVIEWS = textwrap.dedent('''
    def propose(ctx, state):
        if ctx["guidance"].get("step_scale") == 42.0:  # the test's probe
            return {"x": state.get("reviews", 0) / 10}
        return None

    def review(ctx, state, candidate):
        state["reviews"] = state.get("reviews", 0) + 1
        return None
''')


def _spec(scale: float, reviewers: list[str] | None = None) -> list[Any]:
    dry = [["r", "review", {}, {"x": 0.9}]]
    return ["spec", 1, reviewers or ["r"], [[[["g", {"step_scale": 0.7}]], {"x": 0.1}, []],
                                            [[["g", {"step_scale": scale}]], {"x": 0.3}, dry]]]


def _reviews_made(s: SandboxSession) -> float:
    return s.call("r", "propose", 1, {"step_scale": 42.0}, dry=True).value["x"] * 10


def test_predicted_reviews_are_made_only_where_the_guidance_holds() -> None:
    stack = [("g", GUIDE), ("r", COUNT_REVIEWS)]
    with SandboxSession(stack, SPACE, seed=1, budget=5) as s:
        s.start()
        before = s.round_trips
        s.observe(TRIAL, ahead=1, spec=_spec(0.5))  # the second alternative holds: g guides step_scale 0.5
        assert (s.speculations, s.mispredictions, s.round_trips) == (1, 0, before + 1)
        assert s.has_ahead("r", "review", 1, {"step_scale": 0.5}, {"x": 0.3}, dry=False)
        assert s.has_ahead("r", "review", 1, {}, {"x": 0.9}, dry=True)  # its dry calls came along
        assert not s.has_ahead("r", "review", 1, {"step_scale": 0.7}, {"x": 0.1}, dry=False)
        assert s.guide_all(1)["g"].value == {"step_scale": 0.5}
        assert s.call("r", "propose", 1, {"step_scale": 0.5}).value is None
        assert s.call("r", "review", 1, {"step_scale": 0.5}, {"x": 0.3}).value is None
        assert s.round_trips == before + 1 and s.inconsistencies == 0
        assert _reviews_made(s) == 1


def test_a_misprediction_makes_no_review() -> None:
    stack = [("g", GUIDE), ("r", COUNT_REVIEWS)]
    with SandboxSession(stack, SPACE, seed=1, budget=5) as s:
        s.start()
        s.observe(TRIAL, ahead=1, spec=_spec(0.25))  # no alternative holds
        assert (s.speculations, s.mispredictions) == (1, 1)
        assert not s.has_ahead("r", "review", 1, {"step_scale": 0.25}, {"x": 0.3}, dry=False)
        assert not s.has_ahead("r", "review", 1, {}, {"x": 0.9}, dry=True)
        s.guide_all(1)
        s.call("r", "propose", 1, {"step_scale": 0.5})
        assert _reviews_made(s) == 0 and s.inconsistencies == 0


def test_a_prediction_for_other_reviewers_is_not_sent() -> None:
    stack = [("g", GUIDE), ("r", COUNT_REVIEWS)]
    with SandboxSession(stack, SPACE, seed=1, budget=5) as s:
        s.start()
        s.observe(TRIAL, ahead=1, spec=_spec(0.5, reviewers=["g"]))
        assert (s.speculations, s.mispredictions) == (0, 0)
        assert not s.has_ahead("r", "review", 1, {"step_scale": 0.5}, {"x": 0.3}, dry=False)
