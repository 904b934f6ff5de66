"""Confirmation panels, group splits, the confirmation stage and the refusals of bad panel specs."""

from __future__ import annotations

import math

import pytest
from judge_evidence import evidence_from_diffs as _evidence

from bilevel.judge.benchmarks.base import Instance
from bilevel.judge.benchmarks.bbob import BBOB
from bilevel.judge.decision import Thresholds, Verdict, confirm, decide
from bilevel.judge.errors import JudgeError
from bilevel.judge.panels import Panels, PanelSpec, split_panels
from bilevel.judge.stats import few_units_warning, independent_units


def _plain(n: int, groups: int = 4) -> list[Instance]:
    return [Instance(f"k{j}", f"g{j % groups}", {"j": j}) for j in range(n)]


def _keys(entries: tuple) -> set[str]:  # type: ignore[type-arg]
    return {e.instance for e in entries}


def _pairs(entries: tuple) -> set[str]:  # type: ignore[type-arg]
    return {e.key for e in entries}


@pytest.fixture(scope="module")
def bbob() -> Panels:
    return split_panels(BBOB().instances(), PanelSpec(4, 24, 16, 2, "bilevel-v1", 12))  # the bbob defaults


def test_confirmation_panels_are_disjoint_and_fresh_per_generation(bbob: Panels) -> None:
    used = _keys(bbob.search) | _keys(bbob.validation) | _keys(bbob.test)
    panels = [bbob.confirmation(g) for g in range(bbob.fresh_generations)]
    assert bbob.fresh_generations >= 4
    for g, entries in enumerate(panels):
        assert len(entries) == 24 and len(_keys(entries)) == 12
        assert not _keys(entries) & used  # instances no other panel uses
        assert all(30_000 <= e.seed < 40_000 for e in entries)  # its own seed range (literal, not SEED_BASE)
        for earlier in panels[:g]:
            assert not _keys(entries) & _keys(earlier)  # fresh instances every generation
    assert bbob.confirmation(0) == bbob.confirmation(0)


def test_confirmation_wraps_with_new_seeds_once_the_pool_is_used_up() -> None:
    p = split_panels(_plain(24), PanelSpec(2, 8, 8, 2, "s", 4))
    assert len(p.confirmation_pool) == 6 and p.fresh_generations == 1
    seen: set[str] = set()
    for g in range(6):
        pairs = _pairs(p.confirmation(g))
        assert len(pairs) == 8 and not pairs & seen  # pairs never repeat across generations
        seen |= pairs


def test_fixed_seed_ranges_kill_a_shared_seed_base() -> None:
    """Mutant killer: each panel's seeds sit in a range given here as literals, so pointing the test
    panel's seed base at validation's (or any two panels at one base) fails."""
    p = split_panels(_plain(40), PanelSpec(4, 8, 8, 2, "bilevel-v1", 4))
    ranges = {"search": (0, 10_000), "validation": (10_000, 20_000), "test": (20_000, 30_000)}
    for name, (lo, hi) in ranges.items():
        assert all(lo <= e.seed < hi for e in getattr(p, name)), name
    assert not {e.seed for e in p.test} & {e.seed for e in p.validation}
    assert all(30_000 <= e.seed < 40_000 for e in p.confirmation(0))


def test_group_split_keeps_search_groups_out_of_every_deciding_panel() -> None:
    p = split_panels(BBOB().instances(), PanelSpec(4, 16, 16, 2, "bilevel-v1", 8, "group"))
    seen = {e.group for e in p.search}
    assert seen == {"f1", "f8", "f11", "f13"}  # ceil(12 / 3) = 4 of the 12 default BBOB functions, by hash
    for entries in (p.validation, p.test, p.confirmation(0), p.confirmation(3)):
        assert entries and not {e.group for e in entries} & seen
    assert p.split == "group" and Panels.from_json(p.to_json()) == p


def test_instance_split_spreads_every_panel_over_all_groups(bbob: Panels) -> None:
    assert {e.group for e in bbob.confirmation(0)} == {e.group for e in bbob.validation}


@pytest.mark.parametrize(("spec", "instances", "groups", "words"), [
    (PanelSpec(2, 4, 4, 1, "s", 3), 40, 4, "confirmation_instances"),  # 3 pairs: too small a stage
    (PanelSpec(2, 4, 4, 1, "s", 20), 20, 4, "confirmation_instances"),  # more than the unused instances
    (PanelSpec(2, 4, 4, 1, "s", 0, "group"), 40, 1, "split"),  # one group: no group split
    (PanelSpec(2, 8, 8, 1, "s", 0, "group"), 18, 3, "validation_instances"),  # unseen groups too small
    (PanelSpec(2, 4, 4, 1, "s", 0, "by-function"), 40, 4, "split"),
])
def test_bad_panel_specs_are_refused_with_the_keys_to_change(spec: PanelSpec, instances: int, groups: int,
                                                             words: str) -> None:
    with pytest.raises(JudgeError, match=words) as err:
        split_panels(_plain(instances, groups=groups), spec)
    assert "[panels]" in str(err.value)


def test_auto_confirmation_takes_what_is_left_or_turns_off() -> None:
    assert split_panels(_plain(40), PanelSpec(4, 8, 8, 2, "s", -1)).confirmation_instances == 12
    assert split_panels(_plain(23), PanelSpec(4, 8, 8, 2, "s", -1)).confirmation_instances == 3
    off = split_panels(_plain(21), PanelSpec(4, 8, 8, 2, "s", -1))  # 1 instance x 2 seeds < 4 pairs
    assert off.confirmation_instances == 0 and off.confirmation(0) == ()


def test_a_winner_that_fails_confirmation_is_not_kept_and_both_numbers_are_recorded() -> None:
    th = Thresholds(promotion=0.02, n_boot=500)
    selection = decide(_evidence([0.3, 0.25, 0.4, 0.35, 0.3, 0.28, 0.33, 0.31] * 2), th, "m")
    assert selection.keep
    final = confirm(_evidence([0.01, -0.02, 0.0, 0.02, -0.01, 0.01, 0.0, -0.01] * 2), selection, th, "m")
    assert not final.keep and final.stage == "confirmation"
    assert final.reason.startswith("not confirmed on 16 fresh confirmation pairs")
    assert math.isclose(final.selection_mean, selection.mean_improvement) and final.selection_pairs == 16
    assert final.mean_improvement < 0.01  # the verdict's numbers are the confirmation pairs'
    again = Verdict.from_json(final.to_json())
    assert again == final
    held = confirm(_evidence([0.3, 0.2, 0.4, 0.3, 0.35, 0.3, 0.25, 0.3] * 2), selection, th, "m")
    assert held.keep and held.reason.startswith("confirmed")
    with pytest.raises(JudgeError, match="only a candidate the validation panel kept"):
        confirm(_evidence([0.3] * 8), final, th, "m")


def test_old_verdict_records_read_without_selection_numbers() -> None:
    v = decide(_evidence([0.1, 0.2, 0.3, 0.1]), Thresholds(n_boot=100), "m")
    d = v.to_json()
    for k in ("selection_mean", "selection_low", "selection_high", "selection_pairs"):
        d.pop(k)
    old = Verdict.from_json(d)
    assert math.isnan(old.selection_mean) and old.selection_pairs == 0


def test_few_independent_units_warn() -> None:
    assert independent_units(["a", "b", "a"], ["x", "y", "z"]) == (2, "group")
    assert independent_units(["a"] * 9, [f"i{j}" for j in range(9)]) == (9, "instance")
    w = few_units_warning("validation", ["a", "b"] * 4, [f"i{j}" for j in range(8)])
    assert w is not None and "only 2 independent groups" in w
    assert few_units_warning("validation", [f"g{j}" for j in range(8)], [f"i{j}" for j in range(8)]) is None
