"""Cluster-aware statistics: the hierarchical bootstrap's unit, its coverage under group noise, the sign test's tolerance."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.space import FloatParam, Space
from bilevel.judge.stats import hierarchical_bootstrap_ci, paired_bootstrap_ci, sign_test

D = [0.3, -0.1, 0.5, 0.2, -0.4, 0.9, 0.1, 0.0]
G = ["a", "a", "a", "a", "b", "b", "b", "b"]
INST = ["a1", "a1", "a2", "a2", "b1", "b1", "b2", "b2"]

panel = st.integers(1, 4).flatmap(lambda ng: st.lists(
    st.tuples(st.integers(0, ng - 1), st.integers(0, 2), st.floats(-5, 5)), min_size=1, max_size=24))


@settings(max_examples=40, deadline=None)
@given(panel, st.floats(-3, 3))
def test_constant_shift_interval_contains_mean_and_has_a_unit(rows: list[tuple[int, int, float]], c: float) -> None:
    groups = [f"g{g}" for g, _, _ in rows]
    insts = [f"i{i}" for _, i, _ in rows]
    ci = hierarchical_bootstrap_ci([c] * len(rows), groups, insts, n_boot=50)
    assert ci.low == ci.high == ci.mean == c
    ci = hierarchical_bootstrap_ci([d for *_, d in rows], groups, insts, n_boot=50)
    assert ci.low <= ci.mean <= ci.high
    assert ci.unit in ("group", "instance", "pair")


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(range(8))))
def test_invariant_to_pair_order_within_the_same_clusters(perm: list[int]) -> None:
    base = hierarchical_bootstrap_ci(D, G, INST, 0.9, 300, seed=3)
    order = perm
    got = hierarchical_bootstrap_ci([D[k] for k in order], [G[k] for k in order], [INST[k] for k in order], 0.9, 300, seed=3)
    assert (got.mean, got.unit) == (base.mean, base.unit)
    assert abs(got.low - base.low) < 1e-12 and abs(got.high - base.high) < 1e-12


def test_unit_falls_back_from_groups_to_instances_to_pairs() -> None:
    assert hierarchical_bootstrap_ci(D, G, INST).unit == "group"
    assert hierarchical_bootstrap_ci(D, ["a"] * 8, INST).unit == "instance"
    assert hierarchical_bootstrap_ci(D, ["a"] * 8, ["x"] * 8).unit == "pair"


def test_percentiles_are_at_alpha_over_two_fixed_endpoints() -> None:
    """Mutant killer: endpoints computed once with quantiles alpha/2 and 1-alpha/2 (confidence 0.9)."""
    mean, low, high = paired_bootstrap_ci(D, 0.9, 500, seed=7)
    assert (mean, round(low, 6), round(high, 6)) == (0.1875, -0.000625, 0.388125)
    ci = hierarchical_bootstrap_ci(D, G, INST, 0.9, 500, seed=7)
    assert (ci.mean, round(ci.low, 6), round(ci.high, 6), ci.unit) == (0.1875, -0.05, 0.425, "group")


def _independent_ci(d: np.ndarray, rng: np.random.Generator, n_boot: int) -> tuple[float, float]:
    """The reference: the bootstrap that wrongly treats pairs as independent."""
    boot = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return float(lo), float(hi)


def test_coverage_under_group_noise_beats_the_independent_pairs_bootstrap() -> None:
    rng = np.random.default_rng(0)
    n_g, n_i, n_s, panels = 40, 3, 2, 400
    groups = [f"g{g}" for g in range(n_g) for _ in range(n_i * n_s)]
    insts = [f"i{i}" for _ in range(n_g) for i in range(n_i) for _ in range(n_s)]
    hier = indep = 0
    for p in range(panels):
        d = (np.repeat(rng.normal(0, 1.0, n_g), n_i * n_s) + np.repeat(rng.normal(0, 0.3, n_g * n_i), n_s)
             + rng.normal(0, 0.1, n_g * n_i * n_s))
        ci = hierarchical_bootstrap_ci(d, groups, insts, 0.95, 400, seed=p)
        hier += ci.low <= 0.0 <= ci.high
        lo, hi = _independent_ci(d, rng, 200)
        indep += lo <= 0.0 <= hi
    assert hier / panels >= 0.93, hier / panels
    assert indep / panels < 0.80, indep / panels


def test_sign_test_drops_ties_and_small_differences_and_counts_them() -> None:
    res = sign_test([0.0, 0.001, -0.002, 1.0, 2.0, 3.0], tolerance=0.01)
    assert (res.n_used, res.n_dropped) == (3, 3)
    assert res.p == 0.25
    assert sign_test([0.0, 1.0, 2.0]).n_dropped == 1


class _Flat:
    """Every config scores the same: every trial after the first ties the incumbent."""

    @property
    def space(self) -> Space:
        return Space((FloatParam("x", -1, 1),))

    def evaluate(self, config: dict[str, float]) -> float:
        return 1.0


def test_inner_loop_does_not_keep_a_trial_that_ties_the_incumbent() -> None:
    result = run_inner(_Flat(), [], InnerSettings(budget=6), seed=0)  # type: ignore[arg-type]
    assert [t.kept for t in result.trials] == [True] + [False] * 5
