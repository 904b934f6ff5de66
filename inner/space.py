"""The search space: float, int, log-scale, categorical and simplex (data-mix) parameters.

A :class:`Space` is an immutable list of parameters with a stable JSON form
(the form mechanisms see; see ``mechanisms.spacekit``). It samples, validates
with messages that say what is wrong and how to fix it, and repairs.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bilevel.mechanisms import spacekit

Config = dict[str, Any]


class SpaceError(ValueError):
    """A space definition or a config is invalid; the message says what and how to fix it."""


@dataclass(frozen=True)
class FloatParam:
    name: str
    low: float
    high: float
    log: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": "float", "low": float(self.low), "high": float(self.high), "log": self.log}


@dataclass(frozen=True)
class IntParam:
    name: str
    low: int
    high: int
    log: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": "int", "low": int(self.low), "high": int(self.high), "log": self.log}


@dataclass(frozen=True)
class CategoricalParam:
    name: str
    choices: tuple[Any, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": "categorical", "choices": list(self.choices)}


@dataclass(frozen=True)
class SimplexParam:
    """Weights over named domains that sum to one (data-mix weights)."""

    name: str
    domains: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": "simplex", "domains": list(self.domains)}


Param = FloatParam | IntParam | CategoricalParam | SimplexParam


@functools.lru_cache(maxsize=1024)
def param_space(p: Param) -> dict[str, Any]:
    """The JSON space holding only ``p``, for spacekit's codec (one parameter at a time). Cached per
    parameter (a frozen value), so the result is shared: read it, never change it."""
    return {"params": [p.to_json()]}


def _check_param(p: Param) -> None:
    if not p.name or not isinstance(p.name, str):
        raise SpaceError("every parameter needs a non-empty string name")
    if isinstance(p, FloatParam | IntParam):
        if not (_is_finite_number(p.low) and _is_finite_number(p.high)) or p.low > p.high:
            raise SpaceError(f"parameter {p.name!r}: need finite low <= high, got [{p.low}, {p.high}]")
        if p.log and p.low <= 0:
            raise SpaceError(f"parameter {p.name!r}: a log-scale range needs low > 0, got {p.low}")
    elif isinstance(p, CategoricalParam):
        if not p.choices:
            raise SpaceError(f"parameter {p.name!r}: a categorical needs at least one choice")
        if len(set(map(json.dumps, p.choices))) != len(p.choices):
            raise SpaceError(f"parameter {p.name!r}: categorical choices must be distinct")
        if not all(isinstance(c, str | int | float | bool) for c in p.choices):
            raise SpaceError(f"parameter {p.name!r}: choices must be strings, numbers or booleans")
        if not all(isinstance(c, str | bool) or _is_finite_number(c) for c in p.choices):
            raise SpaceError(f"parameter {p.name!r}: numeric choices must be finite, got {list(p.choices)}")
    elif isinstance(p, SimplexParam):
        if len(p.domains) < 2 or len(set(p.domains)) != len(p.domains):
            raise SpaceError(f"parameter {p.name!r}: a simplex needs two or more distinct domain names")


@dataclass(frozen=True)
class Space:
    """An ordered, immutable set of parameters."""

    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for p in self.params:
            _check_param(p)
            if p.name in seen:
                raise SpaceError(f"parameter name {p.name!r} is used twice; names must be unique")
            seen.add(p.name)

    # -- forms ---------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"params": [p.to_json() for p in self.params]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Space:
        if not isinstance(data, dict) or not isinstance(data.get("params"), list):
            raise SpaceError('a space must be {"params": [...]}')
        return cls(tuple(_param_from_json(p) for p in data["params"]))

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def dims(self) -> int:
        return spacekit.dims(self.to_json())

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise SpaceError(f"unknown parameter {name!r}; the space has {self.names}")

    # -- sampling and codec -------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Config:
        """A uniform sample in the unit cube, decoded (log-uniform for log parameters)."""
        return self.decode(rng.random(self.dims).tolist())

    def encode(self, config: Config) -> list[float]:
        return spacekit.encode(self.to_json(), self.validate(config))

    def decode(self, vector: list[float]) -> Config:
        return spacekit.decode(self.to_json(), vector)

    # -- checking ------------------------------------------------------------
    def validate(self, config: Any) -> Config:
        """Return ``config`` if it is a valid point of the space, else raise SpaceError."""
        if not isinstance(config, dict):
            raise SpaceError(f"a config must be a dict of parameter values, got {type(config).__name__}")
        extra = sorted(set(config) - set(self.names))
        if extra:
            raise SpaceError(f"unknown parameters {extra}; the space has {self.names}")
        for p in self.params:
            if p.name not in config:
                raise SpaceError(f"parameter {p.name!r} is missing; give a value for every parameter")
            _check_value(p, config[p.name])
        return config

    def repair(self, config: Config) -> Config:
        """The nearest valid config (clip, round, renormalise); SpaceError if it cannot be repaired."""
        if not isinstance(config, dict):
            raise SpaceError(f"a config must be a dict of parameter values, got {type(config).__name__}")
        try:
            repaired = spacekit.repair(self.to_json(), config)
        except (ValueError, TypeError, OverflowError) as exc:
            raise SpaceError(f"cannot repair the config: {exc}") from exc
        return self.validate(repaired)


def _param_from_json(p: Any) -> Param:
    if not isinstance(p, dict) or "name" not in p or "type" not in p:
        raise SpaceError(f"each parameter needs 'name' and 'type', got {p!r}")
    kind = p["type"]
    try:
        if kind == "float":
            return FloatParam(p["name"], float(p["low"]), float(p["high"]), bool(p.get("log", False)))
        if kind == "int":
            return IntParam(p["name"], int(p["low"]), int(p["high"]), bool(p.get("log", False)))
        if kind == "categorical":
            return CategoricalParam(p["name"], tuple(p["choices"]))
        if kind == "simplex":
            return SimplexParam(p["name"], tuple(str(d) for d in p["domains"]))
    except KeyError as exc:
        raise SpaceError(f"parameter {p.get('name')!r} of type {kind!r} lacks {exc.args[0]!r}") from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise SpaceError(f"parameter {p.get('name')!r} of type {kind!r} has a bad bound or list: {exc}") from exc
    raise SpaceError(f"parameter {p['name']!r}: unknown type {kind!r}; use float, int, categorical or simplex")


#: How far a simplex weight may exceed 1 and the weights' sum may miss 1 (rounding of the mechanism's arithmetic).
SUM_TOLERANCE = 1e-6


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _is_finite_number(x: Any) -> bool:
    """A number that is not NaN or infinite; an int is always finite (``math.isfinite`` would overflow on 10**400)."""
    if not _is_number(x):
        return False
    return isinstance(x, int) or math.isfinite(x)


def _show(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _matches(choice: Any, value: Any) -> bool:
    """A categorical value matches a choice by type and value: True is not 1, and 1.0 is not 1."""
    return type(choice) is type(value) and choice == value


def _check_number(p: FloatParam | IntParam, value: Any) -> None:
    if isinstance(p, IntParam):
        if not isinstance(value, int) or isinstance(value, bool):
            raise SpaceError(f"{p.name} must be an integer (an int, not a float or a bool), got {_show(value)} "
                             f"({type(value).__name__}); give a whole number without a decimal point")
    elif not _is_finite_number(value):
        raise SpaceError(f"{p.name} must be a finite number, got {_show(value)}")
    # Python compares ints and floats exactly, so a huge int is simply out of range (no float conversion).
    if not p.low <= value <= p.high:
        raise SpaceError(f"{p.name}={_show(value)} is outside [{p.low}, {p.high}]; clip it into range")


def _check_simplex(p: SimplexParam, value: Any) -> None:
    if not isinstance(value, dict) or set(value) != set(p.domains):
        raise SpaceError(f"{p.name} must map exactly the domains {list(p.domains)} to weights, got {_show(value)}")
    for domain, w in value.items():
        if not _is_finite_number(w) or not 0 <= w <= 1 + SUM_TOLERANCE:
            raise SpaceError(f"{p.name}: each weight must be a finite number in [0, 1], got {domain}={_show(w)}; "
                             "give non-negative weights that sum to 1")
    # Every weight is in [0, 1 + tol], so the sum is bounded by the number of domains: fsum cannot overflow.
    total = math.fsum(float(w) for w in value.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise SpaceError(f"{p.name}: weights must sum to 1 (they sum to {total:.6g}); renormalise them")


def _check_value(p: Param, value: Any) -> None:
    """Raise SpaceError (showing the value) unless ``value`` is a valid value of ``p``; never another error."""
    if isinstance(p, FloatParam | IntParam):
        _check_number(p, value)
    elif isinstance(p, CategoricalParam):
        if not any(_matches(c, value) for c in p.choices):
            raise SpaceError(f"{p.name}={_show(value)} ({type(value).__name__}) is not one of {list(p.choices)}; "
                             "a choice matches by type and value (true is not 1, 1.0 is not 1)")
    else:
        _check_simplex(p, value)
