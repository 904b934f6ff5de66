"""Judge hooks for training benchmarks: direction-explicit veto floors and per-sub-score regression caps."""

from __future__ import annotations

import pytest

from bilevel.judge.decision import Evidence, Thresholds, decide
from bilevel.judge.errors import JudgeError
from bilevel.judge.evaluate import EvalResult, build_evidence
from bilevel.judge.stack import Stack
from bilevel.runs.spec import SpecError, load_spec

H = "0" * 64


def _evidence(cand_code: list[float], inc_code: list[float], better: float = 0.5) -> Evidence:
    n = len(cand_code)
    return Evidence(keys=tuple(f"i{k}@0" for k in range(n)), groups=tuple("g" for _ in range(n)),
                    candidate=tuple(1.0 - better + 0.01 * k for k in range(n)),
                    incumbent=tuple(1.0 + 0.01 * k for k in range(n)),
                    candidate_subscores={"domain:code": tuple(cand_code)}, changed_share=1.0, fired_share=1.0,
                    fault_rate=0.0, incumbent_subscores={"domain:code": tuple(inc_code)})


def test_subscore_regression_cap_rejects_a_domain_that_loses_too_much() -> None:
    th = Thresholds(subscore_regression_caps={"domain:code": 0.1}, subscore_directions={"domain:code": "higher"})
    kept = decide(_evidence([0.75] * 8, [0.8] * 8), th, H)
    assert kept.keep, kept.reason
    lost = decide(_evidence([0.6] * 8, [0.8] * 8), th, H)
    assert not lost.keep and "'domain:code' (higher is better) regresses" in lost.reason
    # lower is better: a loss going up by 0.2 is a regression, going down is not
    low = Thresholds(subscore_regression_caps={"domain:code": 0.1}, subscore_directions={"domain:code": "lower"})
    assert not decide(_evidence([1.0] * 8, [0.8] * 8), low, H).keep
    assert decide(_evidence([0.6] * 8, [0.8] * 8), low, H).keep


def test_caps_need_explicit_directions_and_incumbent_subscores() -> None:
    with pytest.raises(JudgeError, match="without a direction"):
        Thresholds(subscore_regression_caps={"domain:code": 0.1})
    with pytest.raises(JudgeError, match='"higher" or "lower"'):
        Thresholds(subscore_directions={"x": "up"})
    th = Thresholds(subscore_regression_caps={"domain:math": 0.1}, subscore_directions={"domain:math": "higher"})
    v = decide(_evidence([0.8] * 8, [0.8] * 8), th, H)
    assert not v.keep and "cannot be checked" in v.reason


def test_veto_floor_is_a_ceiling_for_lower_is_better() -> None:
    floor = Thresholds(veto_floors={"domain:code": 0.7})
    assert not decide(_evidence([0.6] * 8, [0.8] * 8), floor, H).keep
    ceiling = Thresholds(veto_floors={"domain:code": 0.7}, subscore_directions={"domain:code": "lower"})
    assert decide(_evidence([0.6] * 8, [0.8] * 8), ceiling, H).keep
    assert "veto ceiling" in decide(_evidence([0.9] * 8, [0.8] * 8), ceiling, H).reason


def test_thresholds_and_evidence_round_trip_and_build_evidence_pairs_incumbent_subscores() -> None:
    th = Thresholds(subscore_regression_caps={"a": 0.1}, subscore_directions={"a": "lower"}, veto_floors={"b": 1})
    assert Thresholds.from_json(th.to_json()) == th
    ev = _evidence([0.7, 0.8], [0.8, 0.8])
    assert Evidence.from_json(ev.to_json()) == ev

    def res(primary: float, sub: float) -> EvalResult:
        return EvalResult("i", "g", 0, primary, {"domain:code": sub}, 1, 0, 0, {}, {}, (primary,))

    built = build_evidence(Stack(()), Stack(()), [res(1.0, 0.3)], [res(2.0, 0.9)])
    assert built.incumbent_subscores == {"domain:code": (0.9,)}


def test_spec_carries_the_hooks_and_benchmark_suggested_panels() -> None:
    spec = load_spec(None, {"run": {"benchmark": "hpo-tabular"},
                            "judge": {"subscore_regression_caps": {"domain:code": 0.1},
                                      "subscore_directions": {"domain:code": "higher"}}})
    assert spec["judge"]["subscore_regression_caps"] == {"domain:code": 0.1}
    assert spec["panels"]["validation_instances"] == 6  # hpo-tabular's suggestion: it has 15 instances
    mine = load_spec(None, {"run": {"benchmark": "hpo-tabular"}, "panels": {"validation_instances": 4}})
    assert mine["panels"]["validation_instances"] == 4  # the user's choice wins
    assert load_spec(None, {})["panels"]["validation_instances"] == 24  # bbob suggests 24 (its 12 groups)
    assert load_spec(None, {"run": {"benchmark": "null"}})["panels"]["validation_instances"] == 16  # global
    with pytest.raises(SpecError):
        load_spec(None, {"judge": {"subscore_regression_caps": 0.1}})
