"""The keep/revert rule: each check with its reason, the cascade, and hypothesis invariants."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bilevel.judge.decision import Evidence, Thresholds, Verdict, decide, stage1_rejects
from bilevel.judge.errors import JudgeError

H = "abc123"


def _evidence(candidate: list[float], incumbent: list[float], groups: list[str] | None = None,
              **kw: object) -> Evidence:
    n = len(candidate)
    base: dict[str, object] = {
        "keys": tuple(f"i{j}@{j}" for j in range(n)),
        "groups": tuple(groups or [f"g{j % 3}" for j in range(n)]),
        "candidate": tuple(candidate), "incumbent": tuple(incumbent),
        "candidate_subscores": {"solved": tuple(0.5 for _ in range(n))},
        "changed_share": 0.3, "fired_share": 0.5, "fault_rate": 0.0,
    }
    base.update(kw)
    return Evidence(**base)  # type: ignore[arg-type]


def _shifted(c: float, n: int = 12) -> Evidence:
    inc = [float(j % 5) for j in range(n)]
    return _evidence([x - c for x in inc], inc)


def test_keep_reason_has_the_numbers() -> None:
    v = decide(_shifted(0.5), Thresholds(), H)
    assert v.keep and v.stage == "full" and v.manifest_hash == H
    assert v.reason.startswith("kept: mean improvement 0.5 [0.5, 0.5] (resampling groups) > 0 over 12 pairs")
    assert v.ci_unit == "group"
    assert v.n_pairs == 12 and v.mean_improvement == pytest.approx(0.5)


def test_faults_come_first() -> None:
    v = decide(dataclasses.replace(_shifted(0.5), fault_rate=0.2, changed_share=0.0), Thresholds(), H)
    assert not v.keep and "sandbox faults in 20.0%" in v.reason


def test_activity_required_unless_config_only() -> None:
    silent = dataclasses.replace(_shifted(0.5), changed_share=0.0, fired_share=0.4)
    v = decide(silent, Thresholds(), H)
    assert not v.keep and "never changed a proposal" in v.reason
    rare = dataclasses.replace(_shifted(0.5), changed_share=0.005)
    assert "only 0.5%" in decide(rare, Thresholds(), H).reason
    assert decide(dataclasses.replace(silent, requires_activity=False), Thresholds(), H).keep


def test_veto_floor_names_the_subscore() -> None:
    th = Thresholds(veto_floors={"solved": 0.6})
    v = decide(_shifted(0.5), th, H)
    assert not v.keep and "'solved'" in v.reason and "0.5 < floor 0.6" in v.reason
    assert "no such sub-score" in decide(_shifted(0.5), Thresholds(veto_floors={"auc": 1.0}), H).reason


def test_regression_cap_names_the_group() -> None:
    inc = [0.0] * 12
    cand = [-1.0] * 12
    groups = ["a"] * 10 + ["b"] * 2
    cand[10] = cand[11] = 2.0  # group b gets worse by 2
    v = decide(_evidence(cand, inc, groups), Thresholds(regression_cap=1.0), H)
    assert not v.keep and "group 'b' regresses" in v.reason
    assert v.worst_group == "b" and v.worst_group_improvement == pytest.approx(-2.0)


def test_promotion_threshold() -> None:
    v = decide(_shifted(0.5), Thresholds(promotion=0.6), H)
    assert not v.keep and "does not clear the promotion threshold 0.6" in v.reason
    noisy = _evidence([0.3, -0.3, 0.2, -0.1], [0.0, 0.0, 0.0, 0.0])
    assert not decide(noisy, Thresholds(), H).keep


def test_stage1_rejects_only_clear_losers() -> None:
    loser = stage1_rejects(_shifted(-1.0, n=8), Thresholds(), H)
    assert loser is not None and not loser.keep and loser.stage == "stage1" and "clear loser" in loser.reason
    assert stage1_rejects(_shifted(0.5, n=8), Thresholds(), H) is None
    assert stage1_rejects(_shifted(-1.0, n=8), Thresholds(stage1_margin=2.0), H) is None


def test_round_trips_and_validation() -> None:
    v = decide(_shifted(0.5), Thresholds(), H)
    assert Verdict.from_json(v.to_json()) == v
    th = Thresholds(promotion=0.1, veto_floors={"solved": 0.2})
    assert Thresholds.from_json(th.to_json()) == th
    ev = _shifted(0.5)
    assert Evidence.from_json(ev.to_json()) == ev
    with pytest.raises(JudgeError, match="unknown threshold"):
        Thresholds.from_json({"promotoin": 0.1})
    with pytest.raises(JudgeError, match="promotion must be >= 0"):
        Thresholds(promotion=-0.1)
    with pytest.raises(JudgeError, match="one value per pair"):
        _evidence([1.0, 2.0], [1.0])
    with pytest.raises(JudgeError, match="finite"):
        _evidence([float("nan")], [1.0])
    with pytest.raises(JudgeError, match="stage"):
        decide(ev, Thresholds(), H, stage="final")


# -- invariants ---------------------------------------------------------------

score = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)
share = st.floats(min_value=0.0, max_value=1.0)
thresholds = st.builds(
    Thresholds,
    promotion=st.floats(min_value=0.0, max_value=1.0),
    regression_cap=st.floats(min_value=0.0, max_value=5.0),
    fault_tolerance=share,
    min_changed_share=share,
    veto_floors=st.dictionaries(st.sampled_from(["solved", "auc"]), st.floats(-1.0, 1.0), max_size=2),
    n_boot=st.integers(10, 200),
)


@st.composite
def evidence_pairs(draw: st.DrawFn) -> tuple[list[float], list[str], dict[str, object]]:
    n = draw(st.integers(1, 16))
    scores = draw(st.lists(score, min_size=n, max_size=n))
    groups = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    extra = {"changed_share": draw(share), "fired_share": draw(share), "fault_rate": draw(share),
             "requires_activity": draw(st.booleans()),
             "candidate_subscores": {"solved": tuple(draw(st.lists(share, min_size=n, max_size=n)))}}
    return scores, groups, extra


@settings(max_examples=150, deadline=None)
@given(evidence_pairs(), thresholds)
def test_a_tie_is_never_kept(data: tuple[list[float], list[str], dict[str, object]], th: Thresholds) -> None:
    scores, groups, extra = data
    ev = _evidence(scores, list(scores), groups, **extra)
    v = decide(ev, th, H)
    assert not v.keep
    assert v == decide(ev, th, H)  # deterministic


@settings(max_examples=100, deadline=None)
@given(st.lists(score, min_size=1, max_size=16), st.floats(min_value=0.0, max_value=1.0),
       st.floats(min_value=1e-3, max_value=5.0))
def test_a_clean_uniform_shift_is_kept(incumbent: list[float], promotion: float, margin: float) -> None:
    c = promotion + margin
    ev = _evidence([x - c for x in incumbent], incumbent, changed_share=0.5, fired_share=0.5, fault_rate=0.0)
    v = decide(ev, Thresholds(promotion=promotion), H)
    assert v.keep, v.reason
    assert v.ci_low > promotion
