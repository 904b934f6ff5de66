"""The Level 1.5 search config: how the base proposer of the inner loop searches.

The outer loop may adjust it between inner runs (freeze parameters, change
step sizes, switch strategy); within one inner run it is fixed. It has a
stable JSON form, recorded with every run, so a run replays with the config
it actually used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import Any


class Strategy(StrEnum):
    """Which base proposer the inner loop asks when no mechanism proposes."""

    GREEDY = "greedy"
    RANDOM = "random"
    TPE = "tpe"
    CMAES = "cmaes"
    QMC = "qmc"
    OPTUNA_RANDOM = "optuna-random"


@dataclass(frozen=True)
class SearchConfig:
    """The base proposer's settings for one inner run.

    - ``strategy``: which base proposer (see :class:`Strategy`).
    - ``step_size``: standard deviation of the greedy perturbation in the unit cube, in (0, 1].
    - ``n_changes``: greedy changes between one and ``n_changes`` parameters per proposal.
    - ``frozen``: parameters the base proposer never changes once there is an incumbent.
    - ``init_random``: how many first trials greedy draws at random (it needs an incumbent).
    """

    strategy: Strategy = Strategy.GREEDY
    step_size: float = 0.15
    n_changes: int = 2
    frozen: tuple[str, ...] = ()
    init_random: int = 1

    def __post_init__(self) -> None:
        """Check every field and canonicalise ``strategy`` (from its string) and ``frozen`` (sorted)."""
        _check(self)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (plain dict); ``from_json`` reads it back to an equal config."""
        d = asdict(self)
        d["strategy"] = self.strategy.value
        d["frozen"] = list(self.frozen)
        return d

    @classmethod
    def from_json(cls, d: Any) -> SearchConfig:
        """Read the JSON form; missing fields take their defaults, anything else wrong raises ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"a search config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"search config: unknown fields {unknown}; allowed: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        if "strategy" in d:
            kwargs["strategy"] = parse_strategy(d["strategy"])
        if "step_size" in d:
            kwargs["step_size"] = _number("step_size", d["step_size"])
        for name in ("n_changes", "init_random"):
            if name in d:
                kwargs[name] = _integer(name, d[name])
        if "frozen" in d:
            kwargs["frozen"] = d["frozen"]
        return cls(**kwargs)

    def replace(self, **changes: Any) -> SearchConfig:
        """A copy with ``changes`` applied and checked (a ``strategy`` may be given as its string)."""
        return replace(self, **changes)


def parse_strategy(value: Any) -> Strategy:
    """A :class:`Strategy` from itself or its string; ValueError lists the allowed ones."""
    try:
        return Strategy(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Strategy)
        raise ValueError(f"search config: unknown strategy {value!r}; use one of: {allowed}") from None


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"search config: {name} must be a number, got {value!r}")
    return float(value)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"search config: {name} must be an integer, got {value!r}")
    return int(value)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"search config: frozen must be a list of parameter names, got {value!r}")
    if not all(isinstance(n, str) and n for n in value):
        raise ValueError(f"search config: frozen must hold non-empty parameter names, got {value!r}")
    return tuple(sorted(set(value)))


def _check(c: SearchConfig) -> None:
    if not isinstance(c.strategy, Strategy):
        object.__setattr__(c, "strategy", parse_strategy(c.strategy))
    step = c.step_size
    if isinstance(step, bool) or not isinstance(step, int | float) or not math.isfinite(step) or not 0 < step <= 1:
        raise ValueError(f"search config: step_size must be in (0, 1], got {step!r}")
    object.__setattr__(c, "step_size", float(step))
    if isinstance(c.n_changes, bool) or not isinstance(c.n_changes, int) or c.n_changes < 1:
        raise ValueError(f"search config: n_changes must be an integer >= 1, got {c.n_changes!r}")
    if isinstance(c.init_random, bool) or not isinstance(c.init_random, int) or c.init_random < 0:
        raise ValueError(f"search config: init_random must be an integer >= 0, got {c.init_random!r}")
    # Canonical form: sorted and without duplicates, so equal configs compare and serialise equal.
    object.__setattr__(c, "frozen", _names(c.frozen))
