"""A mechanism stack as an optuna sampler: optuna's own sampler conformance suite, and the mechanisms at work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)

from bilevel.judge.stack import Mechanism, Stack
from bilevel.mechanisms.library import load_source
from bilevel.runs.optuna_sampler import StackSampler, write_sampler_file

STACK = Stack(tuple(Mechanism(n, load_source(n)) for n in ("tabu", "ucb_bandit", "lhs_design")))


@pytest.mark.slow
class TestStackSamplerConformance(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    """optuna.testing.pytest_samplers, parametrised with StackSampler (tabu + UCB bandit + LHS design)."""

    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: StackSampler(STACK, seed=0)


def _quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_int("y", -5, 5)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    return (x - 1.5) ** 2 + (y + 2) ** 2 + (0.0 if c == "b" else 3.0)


def test_mechanisms_propose_and_the_study_improves(tmp_path: Path) -> None:
    path = write_sampler_file(STACK, tmp_path / "stack.json", budget=40)
    sampler = StackSampler.load(path, seed=1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_quadratic, n_trials=40)
    sources = sampler.proposal_sources()
    lhs = STACK.mechanisms[2].id
    assert sources.get(lhs, 0) >= 3, sources  # the design mechanism proposed its points in the sandbox
    assert sum(sources.values()) == 39  # every trial after the first was sampled relatively
    assert study.best_value < 3.0
    sampler.close()


def test_maximise_and_same_seed_same_points() -> None:
    def run() -> list[dict[str, object]]:
        s = StackSampler(STACK, seed=5)
        study = optuna.create_study(direction="maximize", sampler=s)
        study.optimize(lambda t: -_quadratic(t), n_trials=12)
        s.close()
        return [t.params for t in study.trials]

    first = run()
    assert first == run()


def test_refuses_a_file_of_another_format(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a bilevel sampler file"):
        StackSampler.load(bad)


def test_a_tie_with_the_incumbent_is_not_kept_by_the_sampler() -> None:
    """The sampler tells its loop with the inner loop's keep rule: a trial that ties the best is not kept."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = StackSampler(STACK, seed=2)
    study = optuna.create_study(sampler=s)
    study.optimize(lambda t: 0.0 * _quadratic(t) + 1.0, n_trials=6)
    searches = list(s._searches.values())
    kept = [t.kept for search in searches for t in search.loop.trials]
    s.close()
    assert kept and kept[0] and not any(kept[1:]), kept
