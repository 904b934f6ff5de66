"""Report parts (issue 13): bands on the best-so-far curves say what they resample; legends name mechanisms."""

from __future__ import annotations

import numpy as np

from bilevel.judge.evaluate import EvalResult
from bilevel.judge.stack import Mechanism, Stack
from bilevel.mechanisms.library import load_source
from bilevel.runs.report import _names, band_unit, curve_bands


def _run(group: str, curve: list[float]) -> EvalResult:
    return EvalResult(f"{group}-i", group, 0, curve[-1], {}, len(curve), 0, 0, {}, {}, tuple(curve))


def test_bands_resample_groups_and_hold_the_mean() -> None:
    results = {"baseline": [_run("a", [3.0, 2.0, 1.0]), _run("a", [5.0, 4.0, 3.0]), _run("b", [1.0, 1.0, 0.0]),
                            _run("b", [2.0, 1.0, 1.0])]}
    mean, low, high = curve_bands(results, float)["baseline"]
    assert np.allclose(mean, [2.75, 2.0, 1.25])
    assert np.all(low <= mean) and np.all(mean <= high) and np.all(high - low > 0)
    # two groups: the bootstrap mean can only be a group mean or the mean of both
    assert low[0] == 1.5 and high[0] == 4.0
    assert band_unit(results) == "groups"
    one = {"baseline": [_run("a", [3.0, 1.0]), _run("a", [1.0, 1.0])]}
    assert band_unit(one) == "pairs" and curve_bands(one, float)["baseline"][1][0] == 1.0


def test_legends_name_the_mechanisms() -> None:
    stack = Stack((Mechanism("tabu", load_source("tabu")), Mechanism("trust_region", load_source("trust_region"))))
    assert _names(stack) == "tabu + trust_region"
    assert _names(Stack(())) == Stack(()).describe()
