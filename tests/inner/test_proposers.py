"""The base proposers of the inner loop and the Level 1.5 search config."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bilevel.inner.optuna_proposer import OptunaProposer
from bilevel.inner.proposer_factory import make_proposer
from bilevel.inner.proposers import GreedyProposer, Proposer, ProposerError, RandomProposer
from bilevel.inner.records import Trial
from bilevel.inner.search_config import SearchConfig, Strategy
from bilevel.inner.space import CategoricalParam, Config, FloatParam, IntParam, Param, SimplexParam, Space
from bilevel.mechanisms import spacekit

ALL = list(Strategy)
OPTUNA = [Strategy.TPE, Strategy.CMAES, Strategy.QMC, Strategy.OPTUNA_RANDOM]

MIXED = Space((
    FloatParam("x", -5.0, 5.0),
    FloatParam("lr", 1e-5, 1e-1, log=True),
    IntParam("layers", 1, 12),
    IntParam("batch", 8, 512, log=True),
    CategoricalParam("opt", ("adam", "sgd", "lion")),
    SimplexParam("mix", ("web", "code", "books")),
))


def mixed_score(c: Config) -> float:
    return (c["x"] - 1.0) ** 2 + (math.log10(c["lr"]) + 3) ** 2 + (c["layers"] - 4) ** 2 / 10 \
        + (c["opt"] != "sgd") + (c["mix"]["code"] - 0.6) ** 2


# ---------------------------------------------------------------------------
# A small stand-in for the inner loop, with mechanism proposals, reviews and failures
# ---------------------------------------------------------------------------


Attempt = tuple[int, int]  # (trial index, attempt within the iteration)


@dataclass
class Sim:
    """Drives a proposer as ``inner/loop.py`` does: mechanisms first, reviews that reject (and then the
    proposals are asked again) or change the candidate, failures; keeps the incumbent, records everything."""

    space: Space
    objective: Callable[[Config], float]
    mechanism_at: Callable[[int, int], bool] = lambda t, a: False
    reject_at: Callable[[int, int], bool] = lambda t, a: False
    change_at: Callable[[int], bool] = lambda t: False
    fail_at: Callable[[int], bool] = lambda t: False
    guidance_at: Callable[[int], dict[str, Any]] = lambda t: {}
    max_rejections: int = 3
    trials: list[Trial] = field(default_factory=list)
    proposals: dict[Attempt, Config] = field(default_factory=dict)

    def incumbent(self) -> Trial | None:
        kept = [t for t in self.trials if t.kept]
        return kept[-1] if kept else None

    def candidate(self, p: Proposer, t: int, attempt: int) -> tuple[Config, str]:
        if self.mechanism_at(t, attempt):  # a mechanism proposes: a deterministic point
            return spacekit.decode(self.space.to_json(), [((t * 0.37 + attempt * 0.1) % 1.0)] * self.space.dims), "tabu"
        config = p.propose(t, self.incumbent(), self.guidance_at(t))
        self.proposals[(t, attempt)] = json.loads(json.dumps(config))
        return config, p.source

    def step(self, p: Proposer) -> Trial:
        t = len(self.trials)
        attempt = 0
        config, source = self.candidate(p, t, attempt)
        while self.reject_at(t, attempt) and attempt + 1 < self.max_rejections:
            attempt += 1
            config, source = self.candidate(p, t, attempt)
        if self.change_at(t):  # a review replaces the candidate; the source stays
            config = self.space.repair({**config, "x": 0.5})
        self.space.validate(config)
        score = None if self.fail_at(t) else self.objective(config)
        best = min((s.score for s in self.trials if s.score is not None), default=math.inf)
        trial = Trial(t, config, score, score is not None and score < best, source)
        self.trials.append(trial)
        p.tell(trial)
        return trial

    def run(self, p: Proposer, n: int) -> Sim:
        for _ in range(n):
            self.step(p)
        return self


def busy_mechanism(t: int, attempt: int) -> bool:
    return (t % 7 == 3 and attempt == 0) or (t % 9 == 2 and attempt == 1)


def busy_reject(t: int, attempt: int) -> bool:
    # t % 9 == 2: the base's candidate is rejected and a mechanism's wins; t % 8 == 5: the base is asked
    # three times; t % 14 == 3: a mechanism's candidate is rejected and the base's wins.
    return (t % 9 == 2 and attempt == 0) or t % 8 == 5 or (t % 14 == 3 and attempt == 0)


def busy_sim(space: Space = MIXED) -> Sim:
    return Sim(space, mixed_score, mechanism_at=busy_mechanism, reject_at=busy_reject,
               change_at=lambda t: t % 5 == 4, fail_at=lambda t: t % 11 == 6)


def proposer(strategy: Strategy, seed: int = 0, space: Space = MIXED, **kw: Any) -> Proposer:
    return make_proposer(space, SearchConfig(strategy=strategy, **kw), seed)


def trial_of(space: Space, config: Config, index: int = 0) -> Trial:
    return Trial(index, space.validate(config), 1.0, True, "tabu")


def assert_valid(space: Space, config: Config) -> None:
    space.validate(config)
    assert list(config) == space.names
    for p in space.params:
        if isinstance(p, SimplexParam):
            assert math.fsum(config[p.name].values()) == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------------------
# Every strategy
# ---------------------------------------------------------------------------


def test_make_proposer_picks_the_class() -> None:
    assert isinstance(proposer(Strategy.GREEDY), GreedyProposer)
    assert isinstance(proposer(Strategy.RANDOM), RandomProposer)
    for s in OPTUNA:
        p = proposer(s)
        assert isinstance(p, OptunaProposer) and p.name == s.value and p.source == f"base:{s.value}"
        json.dumps(p.settings())


def test_unknown_frozen_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown parameters"):
        proposer(Strategy.GREEDY, frozen=("nope",))


@pytest.mark.parametrize("strategy", ALL, ids=str)
def test_proposals_are_valid(strategy: Strategy) -> None:
    sim = busy_sim().run(proposer(strategy), 30)
    assert sim.proposals
    for c in sim.proposals.values():
        assert_valid(MIXED, c)


@pytest.mark.parametrize("strategy", ALL, ids=str)
def test_same_seed_same_proposals(strategy: Strategy) -> None:
    a = busy_sim().run(proposer(strategy, seed=5), 25).proposals
    b = busy_sim().run(proposer(strategy, seed=5), 25).proposals
    c = busy_sim().run(proposer(strategy, seed=6), 25).proposals
    assert a == b
    assert a != c


@pytest.mark.parametrize("strategy", ALL, ids=str)
@pytest.mark.parametrize("cut", [2, 13, 22])
def test_resume_makes_the_same_proposals(strategy: Strategy, cut: int) -> None:
    whole = busy_sim().run(proposer(strategy, seed=3), 30)
    resumed = busy_sim()
    resumed.trials = list(whole.trials[:cut])
    fresh = proposer(strategy, seed=3)
    for t in resumed.trials:
        fresh.tell(t)
    resumed.run(fresh, 30 - cut)
    later = {i: c for i, c in whole.proposals.items() if i[0] >= cut}
    assert later and resumed.proposals == later
    assert resumed.trials == whole.trials


@pytest.mark.parametrize("strategy", ALL, ids=str)
def test_guidance_freeze_keeps_the_incumbent_values(strategy: Strategy) -> None:
    sim = Sim(MIXED, mixed_score, guidance_at=lambda t: {"freeze": ["mix", "opt"]} if t >= 12 else {})
    sim.run(proposer(strategy, seed=1), 25)
    for t in range(12, 25):
        inc = next(s for s in reversed(sim.trials[:t]) if s.kept)
        assert sim.proposals[(t, 0)]["mix"] == inc.config["mix"]
        assert sim.proposals[(t, 0)]["opt"] == inc.config["opt"]


@pytest.mark.parametrize("strategy", ALL, ids=str)
def test_config_frozen_keeps_the_incumbent_values(strategy: Strategy) -> None:
    sim = Sim(MIXED, mixed_score).run(proposer(strategy, seed=2, frozen=("lr", "mix")), 20)
    first = sim.trials[0].config
    for t in sim.trials:
        assert t.config["lr"] == first["lr"] and t.config["mix"] == first["mix"]
    moving = {json.dumps({n: v for n, v in t.config.items() if n not in ("lr", "mix")}) for t in sim.trials}
    assert len(moving) > 15


# ---------------------------------------------------------------------------
# Greedy
# ---------------------------------------------------------------------------


INCUMBENT = Trial(0, MIXED.sample(np.random.default_rng(0)), 1.0, True, "base:greedy")


def changed(a: Config, b: Config) -> set[str]:
    return {n for n in a if json.dumps(a[n]) != json.dumps(b[n])}


def greedy_runs(guidance: dict[str, Any], n: int = 200, **kw: Any) -> list[Config]:
    p = proposer(Strategy.GREEDY, seed=9, **kw)
    return [p.propose(t, INCUMBENT, guidance) for t in range(1, n + 1)]


def test_greedy_starts_random_then_perturbs_the_incumbent() -> None:
    p = proposer(Strategy.GREEDY, seed=0, init_random=3)
    starts = [p.propose(t, INCUMBENT if t else None, {}) for t in range(3)]
    assert all(len(changed(c, INCUMBENT.config)) >= 4 for c in starts)
    for c in greedy_runs({}):
        assert 1 <= len(changed(c, INCUMBENT.config)) <= 2


def test_greedy_respects_n_changes() -> None:
    counts = [len(changed(c, INCUMBENT.config)) for c in greedy_runs({}, n_changes=4)]
    assert max(counts) <= 4 and 4 in counts and 1 in counts


def test_greedy_respects_frozen_and_guidance_freeze() -> None:
    for c in greedy_runs({"freeze": ["x", "opt"]}, frozen=("mix",)):
        assert not changed(c, INCUMBENT.config) & {"x", "opt", "mix"}


def test_greedy_changes_focus_first() -> None:
    for c in greedy_runs({"focus": ["lr"]}):
        assert "lr" in changed(c, INCUMBENT.config)
    solo = [changed(c, INCUMBENT.config) for c in greedy_runs({"focus": ["layers", "batch"]}, n_changes=2)]
    assert all(s <= {"layers", "batch"} for s in solo)


def mean_distance(configs: list[Config]) -> float:
    js = MIXED.to_json()
    return statistics.fmean(spacekit.distance(js, c, INCUMBENT.config) for c in configs)


def test_greedy_smaller_step_scale_stays_closer() -> None:
    no_cat = {"freeze": ["opt"]}
    small = mean_distance(greedy_runs({**no_cat, "step_scale": 0.2}))
    plain = mean_distance(greedy_runs(no_cat))
    large = mean_distance(greedy_runs({**no_cat, "step_scale": 3.0}))
    assert small < plain < large


def test_greedy_with_everything_frozen_returns_the_incumbent() -> None:
    (c,) = greedy_runs({"freeze": MIXED.names}, n=1)
    assert c == INCUMBENT.config


def test_greedy_moves_parameters_on_their_bounds() -> None:
    space = Space((IntParam("k", 0, 3), FloatParam("y", 0.0, 1.0)))
    inc = Trial(0, {"k": 3, "y": 1.0}, 0.0, True, "base:greedy")
    p = make_proposer(space, SearchConfig(n_changes=2, step_size=0.01), 0)
    for t in range(1, 50):
        c = p.propose(t, inc, {})
        assert changed(c, inc.config)


# ---------------------------------------------------------------------------
# Random and optuna specifics
# ---------------------------------------------------------------------------


def test_random_is_spread_over_the_space() -> None:
    p = proposer(Strategy.RANDOM)
    xs = [p.propose(t, INCUMBENT, {})["x"] for t in range(200)]
    assert min(xs) < -4 and max(xs) > 4


def test_optuna_frozen_parameters_are_not_asked() -> None:
    p = proposer(Strategy.TPE, frozen=("lr", "mix"))
    assert isinstance(p, OptunaProposer)
    Sim(MIXED, mixed_score).run(p, 3)
    names = set(p.study.trials[-1].params)
    assert "lr" not in names and not any(n.startswith("mix.") for n in names) and "x" in names


def test_optuna_tells_changed_and_failed_candidates_as_failures() -> None:
    p = proposer(Strategy.TPE)
    assert isinstance(p, OptunaProposer)
    Sim(MIXED, mixed_score, mechanism_at=lambda t, a: t % 7 == 3, change_at=lambda t: t % 5 == 4,
        fail_at=lambda t: t % 11 == 6).run(p, 14)
    states = [t.state.name for t in p.study.trials]
    # 14 iterations: 2 mechanism proposals (added), 2 changed by a review (asked FAIL + added), 1 failed.
    assert len(states) == 14 + 2
    assert states.count("FAIL") == 3
    added = [t for t in p.study.trials if t.state.name == "COMPLETE" and "mix.web" in t.params]
    assert all(max(t.params[f"mix.{d}"] for d in ("web", "code", "books")) <= 1.0 for t in added)


def test_optuna_refuses_a_broken_call_order() -> None:
    p = proposer(Strategy.TPE)
    c = p.propose(0, None, {})
    with pytest.raises(ProposerError, match="before trial 0 was told"):
        p.propose(1, None, {})
    with pytest.raises(ProposerError, match="tell got trial 1 after propose"):
        p.tell(Trial(1, c, 1.0, True, p.source))


@pytest.mark.parametrize("strategy", ALL, ids=str)
def test_a_repeated_propose_gives_another_candidate(strategy: Strategy) -> None:
    p = proposer(strategy, seed=4)
    first = [p.propose(0, None, {}) for _ in range(3)]
    assert len({json.dumps(c, sort_keys=True) for c in first}) == 3
    p.tell(Trial(0, first[2], 1.0, True, p.source))
    again = proposer(strategy, seed=4)
    assert [again.propose(0, None, {}) for _ in range(3)] == first


def test_tpe_settings_are_pinned() -> None:
    p = proposer(Strategy.TPE)
    assert isinstance(p, OptunaProposer)
    s: Any = p.study.sampler
    assert s._n_startup_trials == 10 and s._multivariate is False and s._constant_liar is False
    assert s._parzen_estimator_parameters.consider_endpoints is False


def sphere(c: Config) -> float:
    return (c["x"] - 1.5) ** 2 + (c["y"] + 2.0) ** 2


SPHERE = Space((FloatParam("x", -5.0, 5.0), FloatParam("y", -5.0, 5.0)))


def median_best(strategy: Strategy, n: int = 60, seeds: range = range(5)) -> float:
    bests = []
    for seed in seeds:
        sim = Sim(SPHERE, sphere).run(proposer(strategy, seed=seed, space=SPHERE), n)
        bests.append(min(t.score for t in sim.trials if t.score is not None))
    return statistics.median(bests)


def test_model_based_samplers_beat_random_on_a_sphere() -> None:
    random_best = median_best(Strategy.RANDOM)
    assert median_best(Strategy.TPE) < random_best
    assert median_best(Strategy.CMAES) < random_best / 3
    assert median_best(Strategy.GREEDY) < random_best


# ---------------------------------------------------------------------------
# Property test: greedy on random spaces
# ---------------------------------------------------------------------------

_names = st.text("abcdefgh", min_size=1, max_size=4)


@st.composite
def a_param(draw: st.DrawFn, name: str) -> Param:
    kind = draw(st.sampled_from(["float", "logfloat", "int", "logint", "cat", "simplex"]))
    if kind in ("float", "int"):
        low = draw(st.integers(-1000, 1000))
        high = low + draw(st.integers(0, 1000))
        return FloatParam(name, float(low), float(high)) if kind == "float" else IntParam(name, low, high)
    if kind in ("logfloat", "logint"):
        low = draw(st.integers(1, 1000))
        high = low * draw(st.integers(1, 10_000))
        return FloatParam(name, low / 1e4, high / 1e4, log=True) if kind == "logfloat" else IntParam(name, low, high, True)
    if kind == "cat":
        return CategoricalParam(name, tuple(draw(st.lists(_names, min_size=1, max_size=5, unique=True))))
    return SimplexParam(name, tuple(draw(st.lists(_names, min_size=2, max_size=6, unique=True))))


@st.composite
def a_space(draw: st.DrawFn) -> Space:
    names = draw(st.lists(_names, min_size=1, max_size=6, unique=True))
    return Space(tuple(draw(a_param(n)) for n in names))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=a_space(), seed=st.integers(0, 2**63), data=st.data())
def test_greedy_proposals_are_always_valid(space: Space, seed: int, data: st.DataObject) -> None:
    names = st.lists(st.sampled_from(space.names), unique=True)
    frozen = tuple(data.draw(names))
    config = SearchConfig(step_size=data.draw(st.floats(1e-3, 1.0)), n_changes=data.draw(st.integers(1, 4)),
                          frozen=frozen)
    p = make_proposer(space, config, seed)
    incumbent: Trial | None = None
    for t in range(6):
        freeze: list[str] = data.draw(names)
        guidance = {"focus": data.draw(names), "freeze": freeze, "step_scale": data.draw(st.floats(1e-3, 100.0))}
        c = p.propose(t, incumbent, guidance)
        assert_valid(space, c)
        if incumbent is not None:
            for n in set(frozen) | set(freeze):
                assert c[n] == incumbent.config[n]
        incumbent = Trial(t, c, 0.0, True, p.source)
        p.tell(incumbent)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=a_space(), strategy=st.sampled_from(ALL), seed=st.integers(0, 2**63), data=st.data())
def test_every_strategy_is_valid_on_random_spaces(space: Space, strategy: Strategy, seed: int,
                                                  data: st.DataObject) -> None:
    frozen = tuple(data.draw(st.lists(st.sampled_from(space.names), unique=True)))
    p = make_proposer(space, SearchConfig(strategy=strategy, frozen=frozen), seed)
    sim = Sim(space, lambda c: float(len(json.dumps(c, sort_keys=True)) % 7),
              mechanism_at=lambda t, a: t == 4).run(p, 12)
    for c in sim.proposals.values():
        assert_valid(space, c)


# ---------------------------------------------------------------------------
# SearchConfig
# ---------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(strategy=st.sampled_from(Strategy), step=st.floats(1e-6, 1.0), n=st.integers(1, 10),
       frozen=st.lists(_names, max_size=4), init=st.integers(0, 20))
def test_search_config_round_trips(strategy: Strategy, step: float, n: int, frozen: list[str], init: int) -> None:
    c = SearchConfig(strategy, step, n, tuple(frozen), init)
    d = json.loads(json.dumps(c.to_json()))
    assert SearchConfig.from_json(d) == c
    assert d["strategy"] == strategy.value and d["frozen"] == sorted(set(frozen))


def test_search_config_defaults_and_replace() -> None:
    c = SearchConfig.from_json({})
    assert c == SearchConfig() and c.strategy is Strategy.GREEDY
    r = c.replace(strategy=Strategy.TPE, frozen=("b", "a"))
    assert r.strategy is Strategy.TPE and r.frozen == ("a", "b") and c.frozen == ()
    assert SearchConfig.from_json({"strategy": "optuna-random"}).strategy is Strategy.OPTUNA_RANDOM


@pytest.mark.parametrize("bad, message", [
    ({"strategy": "bayes"}, "unknown strategy 'bayes'; use one of: greedy, random, tpe, cmaes, qmc, optuna-random"),
    ({"step_size": 0}, r"step_size must be in \(0, 1\]"),
    ({"step_size": 1.5}, r"step_size must be in \(0, 1\]"),
    ({"step_size": "big"}, "step_size must be a number"),
    ({"n_changes": 0}, "n_changes must be an integer >= 1"),
    ({"n_changes": 1.5}, "n_changes must be an integer"),
    ({"init_random": -1}, "init_random must be an integer >= 0"),
    ({"frozen": "lr"}, "frozen must be a list"),
    ({"colour": 1}, r"unknown fields \['colour'\]"),
])
def test_search_config_bad_fields(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchConfig.from_json(bad)


def test_search_config_replace_checks() -> None:
    with pytest.raises(ValueError, match="n_changes"):
        SearchConfig().replace(n_changes=0)
    with pytest.raises(ValueError, match="unknown strategy"):
        SearchConfig().replace(strategy="nope")


@pytest.mark.parametrize("strategy", OPTUNA, ids=str)
def test_optuna_skips_an_invalid_trial(strategy: Strategy) -> None:
    p = proposer(strategy)
    assert isinstance(p, OptunaProposer)
    c = p.propose(0, None, {})
    p.tell(Trial(0, {**c, "layers": 99}, None, False, p.source, error="invalid candidate"))
    p.tell(Trial(1, {"x": 1.0}, None, False, "tabu", error="invalid candidate"))
    assert [t.state.name for t in p.study.trials] == ["FAIL"]
    assert_valid(MIXED, p.propose(2, None, {}))


@pytest.mark.parametrize("strategy", ALL)
def test_a_speculative_proposer_answers_what_if_before_tell(strategy: Strategy) -> None:
    """``Proposer.speculative``: ``what_if`` for the next trial, asked before ``tell`` of this one (as
    ``inner.speculation`` asks it), is exactly what ``propose`` then returns, attempt by attempt."""
    p = proposer(strategy, seed=5)
    if not p.speculative:
        assert strategy in OPTUNA  # an optuna proposer asks its sampler: nothing to predict before the ask
        return
    sim = busy_sim()
    sim.guidance_at = lambda t: {"focus": ["x", "opt"][: 1 + t % 2], "step_scale": 0.5 + t % 3}
    predicted: dict[Attempt, Config] = {}
    tell = p.tell

    def predicting_tell(trial: Trial) -> None:
        t = trial.index + 1
        for attempt in range(3):
            config = p.what_if(t, sim.incumbent(), sim.guidance_at(t), attempt)
            assert config is not None
            predicted[(t, attempt)] = json.loads(json.dumps(config))
        tell(trial)

    p.tell = predicting_tell  # type: ignore[method-assign]
    sim.run(p, 40)
    made: dict[Attempt, Config] = {}  # by the proposer's own attempt (a mechanism's candidate is no attempt)
    for t, attempt in sorted(sim.proposals):
        made[(t, len([k for k in made if k[0] == t]))] = sim.proposals[(t, attempt)]
    compared = [key for key in made if key in predicted]
    assert len(compared) > 30 and any(a > 0 for _, a in compared)
    assert all(predicted[key] == made[key] for key in compared)
