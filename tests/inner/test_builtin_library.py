"""The newer built-ins do what their docstrings say, seen through whole inner runs in the sandbox."""

from __future__ import annotations

import math

from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.space import Space
from bilevel.judge.stack import Mechanism
from bilevel.mechanisms import spacekit
from bilevel.mechanisms.library import load_source

SPHERE_SPACE = {"params": [{"name": f"x{i}", "type": "float", "low": -5.0, "high": 5.0, "log": False}
                           for i in range(3)]}
MIX_TARGET = {"web": 0.05, "code": 0.7, "books": 0.2, "chat": 0.05}


class Sphere:
    """A shifted, scaled quadratic bowl: the model a quadratic surrogate should fit exactly."""

    space = Space.from_json(SPHERE_SPACE)

    def evaluate(self, config: dict[str, object]) -> float:
        return sum((i + 1.0) * (float(config[f"x{i}"]) - 1.3) ** 2 for i in range(3))  # type: ignore[arg-type]


class Mix:
    """Only the data mix matters: squared distance to a hidden best mix."""

    space = Space.from_json({"params": [{"name": "mix", "type": "simplex", "domains": list(MIX_TARGET)}]})

    def evaluate(self, config: dict[str, object]) -> float:
        mix = config["mix"]
        assert isinstance(mix, dict)
        return sum((mix[d] - w) ** 2 for d, w in MIX_TARGET.items())


def _run(objective: object, names: list[str], seed: int, budget: int = 40):  # type: ignore[no-untyped-def]
    mechs = [Mechanism(n, load_source(n)) for n in names]
    return run_inner(objective, [(m.id, m.source) for m in mechs], InnerSettings(budget=budget), seed)  # type: ignore[arg-type]


def _best(result) -> float:  # type: ignore[no-untyped-def]
    return min(t.score for t in result.trials if t.score is not None)


def test_quad_surrogate_finds_the_bowl_minimum_the_greedy_search_misses() -> None:
    for seed in (1, 2):
        plain = _run(Sphere(), [], seed)
        surrogate = _run(Sphere(), ["quad_surrogate"], seed)
        own = [t for t in surrogate.trials if t.source.startswith("mechanism:")]
        assert own and any(t.kept for t in own), "no surrogate proposal improved the incumbent"
        assert _best(surrogate) < 0.1 * _best(plain), (_best(surrogate), _best(plain))


def test_halton_design_is_a_rotated_halton_sequence_after_the_start_point() -> None:
    a = _run(Sphere(), ["halton_design"], seed=3, budget=12)
    b = _run(Sphere(), ["halton_design"], seed=4, budget=12)
    assert a.trials[0].source == "base:greedy"  # the start point is the base proposer's
    design = [spacekit.encode(SPHERE_SPACE, t.config) for t in a.trials[1:5]]  # min(11, max(4, 0.15 * 12)) = 4
    assert all(t.source.startswith("mechanism:") for t in a.trials[1:5])
    assert a.trials[5].source == "base:greedy"
    assert [t.config for t in a.trials[1:5]] != [t.config for t in b.trials[1:5]]  # the rotation is seeded
    # Halton points 1-4 in base 2 are 1/2, 1/4, 3/4, 1/8; undoing the rotation of the first gives them back
    shift = (design[0][0] - 0.5) % 1.0
    assert [round((u[0] - shift) % 1.0, 9) for u in design] == [0.5, 0.25, 0.75, 0.125]
    for j in range(3):  # low discrepancy: 4 points spread over at least 3 quarters of every coordinate
        assert len({math.floor(u[j] * 4) for u in design}) >= 3


def _step_lengths(result) -> list[float]:  # type: ignore[no-untyped-def]
    """How far each mechanism proposal lies from the incumbent it was made against (unit cube)."""
    out, incumbent = [], None
    for t in result.trials:
        if incumbent is not None and t.source.startswith("mechanism:"):
            out.append(spacekit.distance(SPHERE_SPACE, incumbent, t.config))
        if t.kept:
            incumbent = t.config
    return out


def test_one_plus_one_es_and_cma_shrink_their_steps_as_the_bowl_narrows() -> None:
    # Near the bottom of a bowl successes get rare, so the 1/5th rule must shrink the step size;
    # a fixed step size would keep the proposals as far out as at the start.
    for name in ("one_plus_one_es", "cma_rank_one"):
        for seed in (1, 2):
            steps = _step_lengths(_run(Sphere(), [name], seed, budget=60))
            assert len(steps) >= 50, (name, len(steps))
            early, late = sum(steps[:10]) / 10, sum(steps[-10:]) / 10
            assert late < 0.5 * early, (name, seed, early, late)


def test_simplex_thompson_moves_the_mix_towards_the_domain_that_pays() -> None:
    gains = []
    for seed in (1, 2, 3):
        plain = _run(Mix(), [], seed)
        thompson = _run(Mix(), ["simplex_thompson"], seed)
        assert any(t.kept for t in thompson.trials if t.source.startswith("mechanism:"))
        gains.append(_best(plain) - _best(thompson))
    assert sum(g > 0 for g in gains) >= 2, gains
