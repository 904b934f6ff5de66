"""The verdict's activation words: each new mechanism's share, the least active one deciding, in every reason."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bilevel.judge.decision import Evidence, Thresholds, Verdict, confirm, decide, stage1_rejects
from bilevel.judge.errors import JudgeError

H = "abc123"


def _evidence(shift: float, shares: dict[str, float], n: int = 12) -> Evidence:
    inc = [float(j % 5) for j in range(n)]
    return Evidence(tuple(f"i{j}@{j}" for j in range(n)), tuple(f"g{j % 3}" for j in range(n)),
                    tuple(x - shift for x in inc), tuple(inc), {}, min(shares.values(), default=0.3), 0.9, 0.0,
                    changed_shares=shares)


def test_a_kept_verdict_lists_every_share_and_who_decided() -> None:
    v = decide(_evidence(0.5, {"tabu": 0.125, "trust_region": 1.0}), Thresholds(), H)
    assert v.keep and v.reason.startswith("kept: mean improvement 0.5 [0.5, 0.5]")
    assert v.reason.endswith("activation per new mechanism (share of trials each changed, counterfactually): "
                             "tabu 12.5%, trust_region 100.0%; the least active, tabu, decides")
    assert v.changed_shares == {"tabu": 0.125, "trust_region": 1.0} and v.decided_by == "tabu"
    assert v.changed_share == 0.125


def test_the_inert_member_is_named_in_the_rejection() -> None:
    v = decide(_evidence(0.5, {"identity": 0.0, "trust_region": 0.6, "nudge": 0.0}), Thresholds(), H)
    assert not v.keep and v.decided_by == "identity"
    assert v.reason.startswith("rejected: new mechanisms 'identity', 'nudge' never changed a proposal")
    assert "identity 0.0%, trust_region 60.0%, nudge 0.0%; the least active, identity, decides" in v.reason
    rare = decide(_evidence(0.5, {"tabu": 0.005}), Thresholds(), H)
    assert rare.reason.startswith("rejected: the mechanism 'tabu' changed proposals in only 0.5% of trials")
    assert rare.reason.endswith("; activation (share of trials it changed, counterfactually): tabu 0.5%")


def test_every_stage_carries_the_shares_and_config_only_carries_none() -> None:
    ev = _evidence(-2.0, {"a": 0.2, "b": 0.4})
    early = stage1_rejects(ev, Thresholds(), H)
    assert early is not None and early.reason.endswith("a 20.0%, b 40.0%; the least active, a, decides")
    sel = decide(_evidence(0.5, {"a": 0.2, "b": 0.4}), Thresholds(), H)
    final = confirm(_evidence(0.5, {"a": 0.3, "b": 0.1}), sel, Thresholds(), H)
    assert "a 30.0%, b 10.0%; the least active, b, decides" in final.reason and final.decided_by == "b"
    config_only = dataclasses.replace(_evidence(0.5, {}), requires_activity=False)
    v = decide(config_only, Thresholds(), H)
    assert "activation" not in v.reason and v.changed_shares == {} and v.decided_by == ""


def test_shares_survive_json_and_old_records_read_without_them() -> None:
    ev = _evidence(0.5, {"a": 0.2, "b": 0.4})
    assert Evidence.from_json(json.loads(json.dumps(ev.to_json()))) == ev
    v = decide(ev, Thresholds(), H)
    back = Verdict.from_json(json.loads(json.dumps(v.to_json())))
    assert back.changed_shares == v.changed_shares and back.decided_by == "a" and back.reason == v.reason
    old = {k: x for k, x in v.to_json().items() if k not in ("changed_shares", "decided_by")}
    assert Verdict.from_json(old).changed_shares == {} and Verdict.from_json(old).decided_by == ""


def test_the_decisive_share_must_be_the_least() -> None:
    with pytest.raises(JudgeError, match="least active mechanism decides"):
        dataclasses.replace(_evidence(0.5, {"a": 0.2, "b": 0.4}), changed_share=0.4)
    with pytest.raises(JudgeError, match="mechanism 'a' must be in"):
        _evidence(0.5, {"a": 1.5, "b": 0.2})
