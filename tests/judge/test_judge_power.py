"""The outer run as the unit: t interval, exact sign-flip test, minimum detectable effect, power words."""

from __future__ import annotations

import math

import pytest

from bilevel.judge.evaluate import EvalResult
from bilevel.judge.power import repeat_stats, sign_flip_p
from bilevel.runs.ablate import GROUPS, AblationResult, Row
from bilevel.runs.replay_stack import paired_result


def test_fixed_values() -> None:
    st = repeat_stats([0.1, 0.2, 0.15])
    assert (st.n, round(st.mean, 6), round(st.sd, 6)) == (3, 0.15, 0.05)
    half = 4.303 * 0.05 / math.sqrt(3)  # t(0.975, df 2)
    assert (st.low, st.high) == pytest.approx((0.15 - half, 0.15 + half))
    assert st.mde == pytest.approx((4.303 + 1.061) * 0.05 / math.sqrt(3))  # 0.1549 > 0.15: not detectable
    assert st.p == 0.25 and not st.detectable  # 3 repeats: the smallest possible p is 2/8
    assert sign_flip_p([1.0, 2.0, 3.0, 4.0, 5.0]) == 2 / 32
    assert sign_flip_p([1.0, -1.0]) == 1.0 and sign_flip_p([0.0, 0.0]) == 1.0
    one = repeat_stats([0.3])
    assert one.n == 1 and math.isnan(one.p) and math.isnan(one.mde)


def test_many_repeats_detect_a_real_effect() -> None:
    st = repeat_stats([0.2, 0.25, 0.18, 0.22, 0.3, 0.21, 0.19, 0.24])
    assert st.detectable and st.p == pytest.approx(2 / 256)


def _result(means: dict[str, list[float]], repeats: int) -> AblationResult:
    groups = {g.name: g for g in GROUPS}
    rows = tuple(Row(groups[name], tuple(m), tuple(m), (0,) * len(m), ()) for name, m in means.items())
    return AblationResult(rows, repeats, 1.0)


def test_power_line_says_when_the_study_cannot_detect_its_effects() -> None:
    zeros = _result({"A": [0.0] * 3, "B": [0.0] * 3, "sham": [0.0] * 3}, 3)
    assert "measured no effect" in zeros.power_line()  # the default ablation's all-zero table
    small = _result({"A": [0.0] * 3, "C": [0.1, -0.05, 0.12]}, 3)
    assert small.power_line().startswith("power: this study cannot detect effects of the size it reports for C")
    assert "smallest possible p is 0.25" in small.power_line()
    assert "one repeat" in _result({"A": [0.0], "C": [0.1]}, 1).power_line()
    table = small.table()
    assert table[-1] == small.power_line() and "mde" in table[0]
    assert "unit: the outer run" in table[-2]


def _eval(instance: str, group: str, seed: int, primary: float) -> EvalResult:
    return EvalResult(instance, group, seed, primary, {}, 10, 0, 0, {}, {}, ())


def test_replay_stack_resamples_clusters_and_treats_tiny_nudges_as_ties() -> None:
    keys = [(f"i{j}", f"g{j % 3}", s) for j in range(6) for s in (1, 2)]
    base = [_eval(i, g, s, 1.0) for i, g, s in keys]
    nudged = [_eval(i, g, s, 1.0 - 1e-12) for i, g, s in keys]  # a sham's nudge on every pair
    r = paired_result("sham", "bbob", base, nudged)
    assert (r.ci_unit, r.wins, r.losses, r.dropped, r.p_sign) == ("group", 0, 0, 12, 1.0)
    mine = [_eval(i, g, s, 1.0 - (0.3 if g == "g0" else -0.01)) for i, g, s in keys]
    r = paired_result("x", "bbob", base, mine)
    assert r.ci_unit == "group" and (r.wins, r.losses) == (4, 8)
    assert "ci_unit: group" in r.lines() and r.to_json()["ci_unit"] == "group"
