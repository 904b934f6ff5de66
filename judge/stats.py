"""Statistics for verdicts and reports (numpy only): a paired bootstrap CI, group means, a sign test.

All functions are deterministic for a given seed; none keep state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bilevel.judge.errors import JudgeError


def _as_diffs(diffs: np.ndarray | Sequence[float]) -> np.ndarray:
    arr = np.asarray(diffs, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise JudgeError(f"need a non-empty 1-D array of paired differences, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise JudgeError("paired differences must be finite; a run produced a NaN or infinite score")
    return arr


def paired_bootstrap_ci(diffs: np.ndarray | Sequence[float], confidence: float = 0.95,
                        n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the percentile bootstrap interval of the mean of paired differences.

    Deterministic for a seed. When all differences are equal the interval
    collapses to that value; otherwise it is widened, if rounding ever puts
    the sample mean outside it, to contain the mean. Called once per verdict.
    """
    arr = _as_diffs(diffs)
    if not 0.0 < confidence < 1.0:
        raise JudgeError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise JudgeError(f"n_boot must be >= 1, got {n_boot}")
    mean = float(np.mean(arr))
    if np.all(arr == arr[0]):
        value = float(arr[0])
        return value, value, value
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(n_boot, arr.size))
    boot = arr[idx].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = (float(q) for q in np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0]))
    return mean, min(low, mean), max(high, mean)


def group_means(diffs: np.ndarray | Sequence[float], groups: Sequence[str]) -> dict[str, float]:
    """The mean difference per group, in the order groups first appear."""
    arr = _as_diffs(diffs)
    if len(groups) != arr.size:
        raise JudgeError(f"{arr.size} differences but {len(groups)} group labels")
    sums: dict[str, list[float]] = {}
    for g, d in zip(groups, arr.tolist(), strict=True):
        sums.setdefault(g, []).append(d)
    return {g: math.fsum(v) / len(v) for g, v in sums.items()}


def paired_sign_test(diffs: np.ndarray | Sequence[float]) -> float:
    """The exact two-sided sign-test p-value of "differences are centred on 0" (ties dropped;
    1.0 when every pair ties). For reports next to the bootstrap interval."""
    arr = _as_diffs(diffs)
    pos = int(np.sum(arr > 0))
    n = pos + int(np.sum(arr < 0))
    if n == 0:
        return 1.0
    k = min(pos, n - pos)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n  # exact integers, one rounding
    return min(1.0, 2.0 * tail)
