"""Statistics for verdicts and reports (numpy only): a cluster (hierarchical) bootstrap CI, the plain
paired bootstrap CI, group means, a sign test with a tolerance.

All functions are deterministic for a given seed; none keep state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bilevel.judge.errors import JudgeError


def _as_diffs(diffs: np.ndarray | Sequence[float]) -> np.ndarray:
    arr = np.asarray(diffs, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise JudgeError(f"need a non-empty 1-D array of paired differences, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise JudgeError("paired differences must be finite; a run produced a NaN or infinite score")
    return arr


def _check(confidence: float, n_boot: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise JudgeError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise JudgeError(f"n_boot must be >= 1, got {n_boot}")


def paired_bootstrap_ci(diffs: np.ndarray | Sequence[float], confidence: float = 0.95,
                        n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the percentile bootstrap interval of the mean of paired differences,
    resampling pairs as independent (unit "pair"; see hierarchical_bootstrap_ci for clustered pairs).

    Deterministic for a seed. When all differences are equal the interval
    collapses to that value; otherwise it is widened, if rounding ever puts
    the sample mean outside it, to contain the mean. Called once per verdict.
    """
    arr = _as_diffs(diffs)
    _check(confidence, n_boot)
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


def paired_sign_test(diffs: np.ndarray | Sequence[float], tolerance: float = 0.0) -> float:
    """The exact two-sided sign-test p-value (ties and ``|d| <= tolerance`` dropped; 1.0 when all
    are dropped); ``sign_test`` also says how many were dropped."""
    return sign_test(diffs, tolerance).p


UNITS = ("group", "instance", "pair")


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval of the mean paired difference and the unit that was resampled
    (``"group"``, ``"instance"`` or ``"pair"``); printed next to every interval."""

    mean: float
    low: float
    high: float
    unit: str


def _codes(labels: Sequence[object]) -> np.ndarray:
    """Integer codes 0..k-1 for labels, in sorted label order (so pair order never matters)."""
    rank = {x: k for k, x in enumerate(sorted(set(labels), key=repr))}
    return np.array([rank[x] for x in labels], dtype=np.int64)


def cluster_unit(groups: Sequence[str], instances: Sequence[str]) -> str:
    """The unit the hierarchical bootstrap resamples: groups when there are two or more,
    else instances when there are two or more, else pairs."""
    if len(set(groups)) > 1:
        return "group"
    if len(set(zip(groups, instances, strict=True))) > 1:
        return "instance"
    return "pair"


def _nested(arr: np.ndarray, top: np.ndarray, mid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values padded to [top, mid-within-top, leaf-within-mid] with the counts at each level."""
    n_top = int(top.max()) + 1
    mids = [_codes(mid[top == t].tolist()) for t in range(n_top)]
    n_mid = np.array([int(m.max()) + 1 for m in mids])
    leaves = np.zeros((n_top, int(n_mid.max())), dtype=np.int64)
    cells: dict[tuple[int, int], list[float]] = {}
    for t in range(n_top):
        for m, v in zip(mids[t].tolist(), arr[top == t].tolist(), strict=True):
            cells.setdefault((t, m), []).append(v)
            leaves[t, m] += 1
    values = np.zeros((n_top, leaves.shape[1], int(leaves.max())))
    for (t, m), vs in cells.items():
        values[t, m, :len(vs)] = sorted(vs)  # sorted: invariant to pair order
    return values, n_mid, leaves


def _boot_means(arr: np.ndarray, top: np.ndarray, mid: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """n_boot means of a three-level resample: tops with replacement, then mids within each drawn
    top, then leaves (pairs) within each drawn mid. Vectorised over the bootstrap draws."""
    values, n_mid, leaves = _nested(arr, top, mid)
    n_top, m_max, l_max = values.shape
    rng = np.random.default_rng(seed)
    t_idx = rng.integers(0, n_top, size=(n_boot, n_top))
    m_n = n_mid[t_idx]                                                  # (B, T)
    m_idx = np.floor(rng.random((n_boot, n_top, m_max)) * m_n[..., None]).astype(np.int64)
    m_ok = np.arange(m_max) < m_n[..., None]                            # (B, T, M)
    m_idx = np.where(m_ok, m_idx, 0)
    l_n = leaves[t_idx[..., None], m_idx]                               # (B, T, M)
    l_idx = np.floor(rng.random((n_boot, n_top, m_max, l_max)) * l_n[..., None]).astype(np.int64)
    ok = m_ok[..., None] & (np.arange(l_max) < l_n[..., None])
    l_idx = np.where(ok, l_idx, 0)
    drawn = values[t_idx[..., None, None], m_idx[..., None], l_idx]
    total = np.where(ok, drawn, 0.0).sum(axis=(1, 2, 3))
    return total / ok.sum(axis=(1, 2, 3))


def hierarchical_bootstrap_ci(diffs: np.ndarray | Sequence[float], groups: Sequence[str],
                              instances: Sequence[str], confidence: float = 0.95, n_boot: int = 2000,
                              seed: int = 0) -> Interval:
    """The percentile interval of the mean paired difference from a cluster bootstrap.

    Pairs are instances x seeds over groups, so they are not independent. This
    resamples groups, then instances within each drawn group, then seeds
    (pairs) within each drawn instance. With one group it resamples instances
    (then seeds); with one instance, pairs; ``unit`` records which. Equal
    differences collapse the interval to their value, and the interval is
    widened if needed to contain the mean. Called once per verdict and comparison.
    """
    arr = _as_diffs(diffs)
    if len(groups) != arr.size or len(instances) != arr.size:
        raise JudgeError(f"{arr.size} differences but {len(groups)} group and {len(instances)} instance labels")
    _check(confidence, n_boot)
    unit = cluster_unit(groups, instances)
    mean = math.fsum(arr.tolist()) / arr.size  # exact sum: the same for any pair order
    if np.all(arr == arr[0]):
        return Interval(float(arr[0]), float(arr[0]), float(arr[0]), unit)
    inst = _codes(list(zip(groups, instances, strict=True)))
    one = np.zeros(arr.size, dtype=np.int64)
    top, mid = {"group": (_codes(list(groups)), inst), "instance": (inst, one), "pair": (one, one)}[unit]
    boot = _boot_means(arr, top, mid, n_boot, seed)
    alpha = 1.0 - confidence
    low, high = (float(q) for q in np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0]))
    return Interval(mean, min(low, mean), max(high, mean), unit)


@dataclass(frozen=True)
class SignTest:
    """An exact two-sided sign test: the p-value, the pairs it used, and how many it dropped
    (ties and differences within ``tolerance`` of 0)."""

    p: float
    n_used: int
    n_dropped: int
    tolerance: float


def sign_test(diffs: np.ndarray | Sequence[float], tolerance: float = 0.0) -> SignTest:
    """The exact two-sided sign test of "differences are centred on 0"; differences with
    ``|d| <= tolerance`` (ties included) are dropped and counted. p is 1.0 when all are dropped."""
    arr = _as_diffs(diffs)
    if not (math.isfinite(tolerance) and tolerance >= 0.0):
        raise JudgeError(f"tolerance must be a finite number >= 0, got {tolerance}")
    used = arr[np.abs(arr) > tolerance]
    pos, n = int(np.sum(used > 0)), int(used.size)
    dropped = int(arr.size) - n
    if n == 0:
        return SignTest(1.0, 0, dropped, tolerance)
    k = min(pos, n - pos)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n  # exact integers, one rounding
    return SignTest(min(1.0, 2.0 * tail), n, dropped, tolerance)


MIN_UNITS = 8  # fewer independent units than this and an interval is a warning, not evidence


def independent_units(groups: Sequence[str], instances: Sequence[str]) -> tuple[int, str]:
    """(how many, which): the independent units the cluster bootstrap resamples for these pairs."""
    unit = cluster_unit(groups, instances)
    if unit == "group":
        return len(set(groups)), unit
    if unit == "instance":
        return len(set(zip(groups, instances, strict=True))), unit
    return len(groups), unit


def few_units_warning(panel: str, groups: Sequence[str], instances: Sequence[str]) -> str | None:
    """A warning when a deciding panel has fewer than ``MIN_UNITS`` independent units; else None."""
    n, unit = independent_units(groups, instances)
    if n >= MIN_UNITS:
        return None
    return (f"the {panel} panel has only {n} independent {unit}s (fewer than {MIN_UNITS}): its interval "
            f"rests on {n} units, treat it as weak evidence")
