"""Statistics when the outer run is the unit (ablations, studies over outer seeds): a t interval of the
mean over repeats, an exact sign-flip test across repeats, and the minimum detectable effect.

Each repeat contributes one number (its mean paired improvement over the control on its own panel),
so pairs inside a repeat never count as independent. numpy only; no state.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bilevel.judge.errors import JudgeError

# Student t quantiles for df 1..30 (two-sided 95%: q 0.975; 80% power: q 0.80); beyond 30, the normal's.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)
_T80 = (1.376, 1.061, 0.978, 0.941, 0.920, 0.906, 0.896, 0.889, 0.883, 0.879, 0.876, 0.873, 0.870, 0.868,
        0.866, 0.865, 0.863, 0.862, 0.861, 0.860, 0.859, 0.858, 0.858, 0.857, 0.856, 0.856, 0.855, 0.855,
        0.854, 0.854)
ALPHA = 0.05
POWER = 0.80
_EXACT_UP_TO = 16  # repeats whose 2^n sign flips are all enumerated; more: 20000 seeded draws


def _t(table: tuple[float, ...], normal: float, df: int) -> float:
    return table[df - 1] if df <= len(table) else normal


@dataclass(frozen=True)
class RepeatStats:
    """The across-repeat numbers of one comparison: ``n`` repeats, their mean and sample sd, the 95% t
    interval, the exact sign-flip p, and the minimum detectable effect (two-sided 5% test, 80% power)
    at the observed sd. Intervals, p and MDE are NaN with fewer than 2 repeats."""

    n: int
    mean: float
    sd: float
    low: float
    high: float
    p: float
    mde: float

    @property
    def detectable(self) -> bool:
        """Whether the study could detect an effect of the size it reports (|mean| >= MDE, MDE known)."""
        return not math.isnan(self.mde) and self.mde > 0 and abs(self.mean) >= self.mde


def sign_flip_p(values: Sequence[float]) -> float:
    """The exact two-sided sign-flip (randomisation) p of "repeat means are centred on 0": the share
    of the 2^n sign patterns whose |mean| is at least the observed |mean|. With n repeats the smallest
    possible p is 2 / 2^n (0.25 for 3 repeats): few repeats cannot reject anything."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise JudgeError("a sign-flip test needs at least one repeat")
    observed = abs(float(v.mean()))
    if observed == 0.0:
        return 1.0
    if v.size <= _EXACT_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=v.size)))
    else:
        signs = np.where(np.random.default_rng(0).random((20_000, v.size)) < 0.5, -1.0, 1.0)
    means = np.abs((signs * v).mean(axis=1))
    return float(np.mean(means >= observed - 1e-12))


def repeat_stats(values: Sequence[float]) -> RepeatStats:
    """The across-repeat statistics of per-repeat mean improvements (called once per table row)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise JudgeError(f"repeat means must be finite and non-empty, got {list(values)}")
    mean = float(v.mean())
    if v.size < 2:
        nan = math.nan
        return RepeatStats(1, mean, nan, nan, nan, nan, nan)
    sd = float(v.std(ddof=1))
    se = sd / math.sqrt(v.size)
    df = v.size - 1
    half = _t(_T975, 1.960, df) * se
    mde = (_t(_T975, 1.960, df) + _t(_T80, 0.842, df)) * se
    return RepeatStats(int(v.size), mean, sd, mean - half, mean + half, sign_flip_p(v.tolist()), mde)
