"""Helpers the training benchmarks share: option checks, best-so-far scoring, trial configs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bilevel.inner.records import InnerResult, Trial
from bilevel.judge.errors import BenchmarkError


@dataclass(frozen=True)
class Curve:
    """The best-so-far summary of an inner run: the best value (``empty`` when nothing succeeded),
    the best trial, and the mean of the best-so-far curve (the anytime area, lower is better)."""

    best: float
    best_trial: Trial | None
    auc: float


def curve(result: InnerResult, empty: float) -> Curve:
    """Failed trials (score None or not finite) never improve the best but use up budget;
    positions before the first success count at ``empty``."""
    best = math.inf
    best_trial: Trial | None = None
    points: list[float] = []
    for trial in result.trials:
        s = trial.score
        if s is not None and math.isfinite(s) and s < best:
            best, best_trial = float(s), trial
        points.append(best if math.isfinite(best) else empty)
    if best_trial is None:
        return Curve(empty, None, empty)
    return Curve(best, best_trial, float(np.mean(points)) if points else empty)


def check_int(bench: str, name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BenchmarkError(f"{bench} option {name!r} must be an integer in {low}..{high}, got {value!r}")
    return value


def check_float(bench: str, name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BenchmarkError(f"{bench} option {name!r} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def check_choice(bench: str, name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise BenchmarkError(f"{bench} option {name!r} must be one of {list(choices)}, got {value!r}")
    return str(value)


def check_strings(bench: str, name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise BenchmarkError(f"{bench} option {name!r} must be a list of strings, got {value!r}")
    return tuple(value)
