"""The search space: sampling, validation messages, repair, the unit-cube codec and its JSON form."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bilevel.inner.space import CategoricalParam, FloatParam, IntParam, SimplexParam, Space, SpaceError


@st.composite
def params(draw: st.DrawFn, name: str) -> Any:
    kind = draw(st.sampled_from(["float", "logfloat", "int", "cat", "simplex"]))
    if kind == "float":
        low = draw(st.floats(-1e3, 1e3))
        return FloatParam(name, low, low + draw(st.floats(0, 1e3)))
    if kind == "logfloat":
        low = draw(st.floats(1e-6, 1e2))
        return FloatParam(name, low, low * draw(st.floats(1, 1e4)), log=True)
    if kind == "int":
        low = draw(st.integers(-100, 100))
        return IntParam(name, low, low + draw(st.integers(0, 200)))
    if kind == "cat":
        return CategoricalParam(name, tuple(draw(st.lists(st.text("abc", min_size=1, max_size=3), min_size=1,
                                                         max_size=5, unique=True))))
    return SimplexParam(name, tuple(f"d{i}" for i in range(draw(st.integers(2, 5)))))


@st.composite
def spaces(draw: st.DrawFn) -> Space:
    n = draw(st.integers(1, 6))
    return Space(tuple(draw(params(f"p{i}")) for i in range(n)))


@given(spaces(), st.integers(0, 2**31 - 1))
@settings(max_examples=150, deadline=None)
def test_samples_are_valid_and_simplex_weights_sum_to_one(space: Space, seed: int) -> None:
    config = space.sample(np.random.default_rng(seed))
    assert space.validate(config) is config
    for p in space.params:
        if isinstance(p, SimplexParam):
            assert math.isclose(sum(config[p.name].values()), 1.0, abs_tol=1e-9)


@given(spaces(), st.lists(st.floats(-2, 3) | st.just(float("nan")), min_size=30, max_size=30))
@settings(max_examples=150, deadline=None)
def test_decode_of_any_vector_is_valid(space: Space, raw: list[float]) -> None:
    config = space.decode(raw[: space.dims])
    space.validate(config)
    assert all(0.0 <= u <= 1.0 for u in space.encode(config))


@given(spaces(), st.integers(0, 2**31 - 1), st.floats(-10, 10))
@settings(max_examples=150, deadline=None)
def test_repair_gives_a_valid_config_and_keeps_valid_ones(space: Space, seed: int, shift: float) -> None:
    config = space.sample(np.random.default_rng(seed))
    assert _same(space, space.repair(config), config)
    broken = {k: (v + shift * 1e3 if isinstance(v, float) else v) for k, v in config.items()}
    for p in space.params:
        if isinstance(p, SimplexParam):
            broken[p.name] = {d: w * 3 + 0.1 for d, w in config[p.name].items()}
    space.validate(space.repair(broken))


def _same(space: Space, a: dict[str, Any], b: dict[str, Any]) -> bool:
    return np.allclose(space.encode(a), space.encode(b))


@given(spaces())
@settings(max_examples=100, deadline=None)
def test_json_form_round_trips(space: Space) -> None:
    assert Space.from_json(space.to_json()) == space


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"lr": 0.01, "n": 3, "opt": "adam"}, "'mix' is missing"),
        ({"lr": 0.01, "n": 3, "opt": "adam", "mix": {"a": 0.5, "b": 0.5}, "extra": 1}, "unknown parameters ['extra']"),
        ({"lr": 5.0, "n": 3, "opt": "adam", "mix": {"a": 0.5, "b": 0.5}}, "outside"),
        ({"lr": 0.01, "n": 2.5, "opt": "adam", "mix": {"a": 0.5, "b": 0.5}}, "must be an integer"),
        ({"lr": 0.01, "n": 3, "opt": "rmsprop", "mix": {"a": 0.5, "b": 0.5}}, "is not one of"),
        ({"lr": 0.01, "n": 3, "opt": "adam", "mix": {"a": 0.7, "b": 0.7}}, "must sum to 1"),
        ({"lr": float("nan"), "n": 3, "opt": "adam", "mix": {"a": 0.5, "b": 0.5}}, "finite number"),
    ],
)
def test_validation_messages_say_what_is_wrong(config: dict[str, Any], needle: str) -> None:
    space = Space((FloatParam("lr", 1e-4, 1.0, log=True), IntParam("n", 1, 8), CategoricalParam("opt", ("adam", "sgd")),
                   SimplexParam("mix", ("a", "b"))))
    with pytest.raises(SpaceError) as err:
        space.validate(config)
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: Space((FloatParam("x", 1, 0),)), "low <= high"),
        (lambda: Space((FloatParam("x", 0, 1, log=True),)), "log-scale range needs low > 0"),
        (lambda: Space((FloatParam("x", 0, 1), IntParam("x", 0, 1))), "used twice"),
        (lambda: Space((SimplexParam("m", ("a",)),)), "two or more"),
        (lambda: Space.from_json({"params": [{"name": "x", "type": "complex"}]}), "unknown type 'complex'"),
        (lambda: Space.from_json({"params": [{"name": "x", "type": "float", "low": 0}]}), "lacks 'high'"),
    ],
)
def test_bad_spaces_are_refused(build: Any, needle: str) -> None:
    with pytest.raises(SpaceError) as err:
        build()
    assert needle in str(err.value)


STRICT = Space((IntParam("n", 1, 8), CategoricalParam("k", (1, "b", 2.5)), SimplexParam("mix", ("a", "b")),
                FloatParam("x", 0.0, 1.0)))
VALID = {"n": 6, "k": 1, "mix": {"a": 0.5, "b": 0.5}, "x": 0.5}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"mix": {"a": 1e308, "b": 1e308}}, "a=1e+308"),
        ({"mix": {"a": 1e308, "b": -1e308}}, "in [0, 1]"),
        ({"mix": {"a": 10**400, "b": 0.0}}, "in [0, 1]"),
        ({"mix": {"a": True, "b": 0.0}}, "a=True"),
        ({"mix": {"a": 0.6, "b": 0.6}}, "sum to 1"),
        ({"n": 6.0}, "got 6.0 (float)"),
        ({"n": True}, "got True (bool)"),
        ({"n": 10**400}, "outside [1, 8]"),
        ({"x": 10**400}, "outside [0.0, 1.0]"),
        ({"x": -(10**400)}, "outside [0.0, 1.0]"),
        ({"k": True}, "k=True (bool) is not one of"),
        ({"k": 1.0}, "k=1.0 (float) is not one of"),
        ({"k": "1"}, "is not one of"),
        ({"k": 2.5 + 0j}, "is not one of"),
    ],
)
def test_values_are_strict_and_every_failure_is_a_space_error(change: dict[str, Any], needle: str) -> None:
    STRICT.validate(VALID)
    with pytest.raises(SpaceError) as err:
        STRICT.validate({**VALID, **change})
    assert needle in str(err.value)


def test_bool_choices_match_only_bools() -> None:
    space = Space((CategoricalParam("flag", (True, 0)),))
    space.validate({"flag": True})
    space.validate({"flag": 0})
    for bad in (1, False, 0.0):
        with pytest.raises(SpaceError):
            space.validate({"flag": bad})


def test_repair_never_raises_anything_but_a_space_error() -> None:
    with pytest.raises(SpaceError):
        STRICT.repair({**VALID, "mix": {"a": 1e308, "b": 1e308}})
    with pytest.raises(SpaceError):
        STRICT.repair({**VALID, "x": 10**400})
    with pytest.raises(SpaceError):
        STRICT.repair({**VALID, "k": True})
    assert STRICT.repair({**VALID, "n": 6.4, "x": 2.0}) == {**VALID, "n": 6, "x": 1.0}


@pytest.mark.parametrize("data", [
    {"params": [{"name": "n", "type": "int", "low": 0, "high": float("inf")}]},
    {"params": [{"name": "x", "type": "float", "low": 0, "high": 10**400}]},
    {"params": [{"name": "x", "type": "float", "low": "zero", "high": 1}]},
    {"params": [{"name": "c", "type": "categorical", "choices": [float("nan")]}]},
])
def test_bad_bounds_in_json_are_space_errors(data: dict[str, Any]) -> None:
    with pytest.raises(SpaceError):
        Space.from_json(data)
