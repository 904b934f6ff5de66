"""Panels: disjointness, determinism, spread, errors; and the bootstrap's properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bilevel.judge.benchmarks.base import Instance
from bilevel.judge.benchmarks.bbob import BBOB
from bilevel.judge.errors import JudgeError
from bilevel.judge.panels import SEED_BASE, SEED_SPAN, PanelEntry, Panels, PanelSpec, split_panels
from bilevel.judge.stats import group_means, paired_bootstrap_ci, paired_sign_test

PANELS = ("search", "validation", "test")


def _plain(n: int, groups: int = 4) -> list[Instance]:
    return [Instance(f"k{j}", f"g{j % groups}", {"j": j}) for j in range(n)]


@pytest.fixture(scope="module")
def bbob_panels() -> Panels:
    return split_panels(BBOB().instances(), PanelSpec())


def _instances(p: Panels, name: str) -> set[str]:
    return {e.instance for e in getattr(p, name)}


def test_sizes_and_disjoint_instances_and_seeds(bbob_panels: Panels) -> None:
    spec = PanelSpec()
    for name, n in (("search", 6), ("validation", 12), ("test", 12)):
        entries = getattr(bbob_panels, name)
        assert len(_instances(bbob_panels, name)) == n
        assert len(entries) == n * spec.seeds_per_instance
        assert len({e.key for e in entries}) == len(entries)
        assert all(SEED_BASE[name] <= e.seed < SEED_BASE[name] + SEED_SPAN for e in entries)
    for a, b in (("search", "validation"), ("search", "test"), ("validation", "test")):
        assert not _instances(bbob_panels, a) & _instances(bbob_panels, b)


def test_bbob_test_panel_uses_unseen_instance_ids(bbob_panels: Panels) -> None:
    bbob = BBOB()

    def ids(name: str) -> set[int]:
        return {bbob.instance(k).data["instance"] for k in _instances(bbob_panels, name)}

    assert ids("test") - ids("validation")  # the brief's requirement
    assert not ids("test") & (ids("validation") | ids("search"))  # holdout families: fully disjoint


def test_panels_spread_over_groups(bbob_panels: Panels) -> None:
    groups = {f"f{f}" for f in BBOB().functions}
    for name in PANELS:  # every panel covers as many groups as it has instances, up to all of them
        covered = {e.group for e in getattr(bbob_panels, name)}
        assert covered <= groups and len(covered) == min(len(_instances(bbob_panels, name)), len(groups))


def test_deterministic_and_salted() -> None:
    insts = BBOB().instances()
    a = split_panels(insts, PanelSpec())
    assert a == split_panels(list(reversed(insts)), PanelSpec())  # input order does not matter
    assert a != split_panels(insts, PanelSpec(salt="other"))


def test_json_round_trip(bbob_panels: Panels) -> None:
    assert Panels.from_json(bbob_panels.to_json()) == bbob_panels
    with pytest.raises(JudgeError):
        Panels.from_json({"search": []})


def test_plain_split_without_holdout() -> None:
    p = split_panels(_plain(30), PanelSpec(search_instances=4, validation_instances=8, test_instances=8,
                                           seeds_per_instance=3))
    assert sum(len(_instances(p, n)) for n in PANELS) == 20
    assert len(set().union(*(_instances(p, n) for n in PANELS))) == 20
    assert {e.group for e in p.validation} == {"g0", "g1", "g2", "g3"}
    assert all(len({e.seed for e in p.validation if e.instance == k}) == 3 for k in _instances(p, "validation"))


def test_holdout_falls_back_when_families_are_too_few() -> None:
    insts = [Instance(f"k{j}", f"g{j % 3}", {}, holdout="only") for j in range(9)]
    p = split_panels(insts, PanelSpec(search_instances=3, validation_instances=3, test_instances=3))
    assert len(set().union(*(_instances(p, n) for n in PANELS))) == 9


def test_too_few_instances_is_a_clear_error() -> None:
    with pytest.raises(JudgeError, match="10 available, 30 needed"):
        split_panels(_plain(10), PanelSpec())
    with pytest.raises(JudgeError, match="unique"):
        split_panels(_plain(30) + _plain(1), PanelSpec())
    with pytest.raises(JudgeError, match="validation_instances"):
        split_panels(_plain(30), PanelSpec(validation_instances=0))


def test_stage1_spreads_over_groups(bbob_panels: Panels) -> None:
    s1 = bbob_panels.stage1(8)
    assert s1 == bbob_panels.stage1(8)
    assert len(s1) == 8 and set(s1) <= set(bbob_panels.validation)
    assert len({e.group for e in s1}) == 8  # 8 of the 12 groups: every group before any group twice
    assert len({e.instance for e in s1}) == 8  # distinct instances before second seeds
    assert set(bbob_panels.stage1(1000)) == set(bbob_panels.validation)
    with pytest.raises(JudgeError):
        bbob_panels.stage1(0)


def test_panel_entry_key() -> None:
    assert PanelEntry("bbob-f3-d5-i2", "f3", 17).key == "bbob-f3-d5-i2@17"


# -- statistics -------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=40), st.integers(0, 2**31))
def test_bootstrap_contains_the_mean_and_is_deterministic(diffs: list[float], seed: int) -> None:
    mean, low, high = paired_bootstrap_ci(np.array(diffs), n_boot=300, seed=seed)
    assert low <= mean <= high
    assert mean == pytest.approx(float(np.mean(diffs)))
    assert (mean, low, high) == paired_bootstrap_ci(np.array(diffs), n_boot=300, seed=seed)


@settings(max_examples=40, deadline=None)
@given(finite, st.integers(1, 30))
def test_bootstrap_collapses_for_constant_diffs(value: float, n: int) -> None:
    assert paired_bootstrap_ci(np.full(n, value)) == (value, value, value)


def test_bootstrap_interval_shrinks_with_more_pairs() -> None:
    rng = np.random.default_rng(1)
    small = paired_bootstrap_ci(rng.normal(1.0, 1.0, 10))
    large = paired_bootstrap_ci(rng.normal(1.0, 1.0, 1000))
    assert large[2] - large[1] < small[2] - small[1]
    assert large[1] > 0.8


def test_group_means_and_sign_test() -> None:
    assert group_means([1.0, 3.0, -2.0], ["a", "a", "b"]) == {"a": 2.0, "b": -2.0}
    with pytest.raises(JudgeError):
        group_means([1.0], ["a", "b"])
    with pytest.raises(JudgeError):
        paired_bootstrap_ci([])
    assert paired_sign_test([0.0, 0.0]) == 1.0
    assert paired_sign_test([1.0] * 10) == pytest.approx(2 / 2**10)
