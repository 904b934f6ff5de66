"""The batching proposer: several proposals per model call, each run as a trial through the mechanisms' review."""

from __future__ import annotations

import pytest

from bilevel.inner.chat import ChatSettings
from bilevel.inner.llm_proposer import ProposalRejected, parse_batch
from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.space import CategoricalParam, FloatParam, IntParam, Space
from bilevel.judge.benchmarks import get_benchmark
from bilevel.outer.llm import model_ref

SPACE = Space((FloatParam("lr", 1e-4, 1.0, log=True), IntParam("layers", 1, 8), CategoricalParam("act", ("relu", "gelu"))))
INCUMBENT = {"lr": 0.01, "layers": 2, "act": "relu"}


def test_a_batch_answer_keeps_its_usable_proposals_and_says_why_the_others_went() -> None:
    text = ('Here you go:\n```json\n{"proposals": [{"changes": {"lr": 0.1}, "hypothesis": "bigger"},'
            ' {"changes": {"depth": 3}}, {"changes": {"lr": 0.1}}, {"changes": {}},'
            ' {"changes": {"act": "gelu", "layers": 9}}, {"changes": {"layers": 3}}]}\n```')
    usable, dropped = parse_batch(text, SPACE, INCUMBENT, set(), wanted=5)
    assert [u["changes"] for u in usable] == [{"lr": 0.1}, {"act": "gelu", "layers": 9}]  # layers 9 is clipped later
    assert dropped == ["#2: unknown parameters ['depth']; the space has ['lr', 'layers', 'act']",
                       "#3: repeats an earlier proposal of the batch", "#4: the proposal changes nothing; "
                       "change at least one parameter", "1 proposals beyond the 5 asked for"]
    for bad, reason in [('{"changes": {"lr": 0.1}}', "must be {\"proposals\""), ('{"proposals": []}', "proposals"),
                        ('{"proposals": [{"changes": {"act": "tanh"}}]}', "no usable proposal: #1: .*not one of")]:
        with pytest.raises(ProposalRejected, match=reason):
            parse_batch(bad, SPACE, INCUMBENT, set(), wanted=4)


def _run(per_call: int, seed: int = 5):  # type: ignore[no-untyped-def]
    bench = get_benchmark("bbob", {"functions": [1], "dimensions": [2], "instance_ids": [1]})
    ref = model_ref("scripted:demo", ChatSettings(), options={"proposals_per_call": str(per_call)})
    return run_inner(bench.objective(bench.instances()[0], 0), [], InnerSettings(budget=24, model=ref), seed=seed)


def test_one_call_feeds_several_trials_and_every_proposal_is_accounted_for() -> None:
    single, batched = _run(1), _run(6)
    llm_trials = sum(t.source == "base:llm" for t in batched.trials)
    assert llm_trials >= 18
    calls = batched.llm_calls
    assert all(c["prompt_version"].startswith("proposer_batch_v1@") for c in calls)
    assert all("Proposals wanted: 6" in c["messages"][0][1] for c in calls)
    assert len(calls) <= len(single.llm_calls) / 3  # 24 trials: about 4 calls against about 23
    accepted = [c for c in calls if c["outcome"].startswith("accepted")]
    assert sum(c["used"] for c in accepted) == llm_trials  # every LLM trial came from one recorded proposal
    assert all(c["used"] + len(c.get("skipped", [])) <= 6 for c in accepted)
    again = _run(6)
    assert [t.config for t in again.trials] == [t.config for t in batched.trials]  # deterministic for a seed
