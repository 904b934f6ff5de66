"""The LLM proposer: strict parsing, safe repairs, rejections with reasons, bounded retries, a recorded fallback."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bilevel.inner.chat import Caller, ChatReply, ChatRequest, ChatSettings, ModelRef
from bilevel.inner.llm_proposer import LLMProposer, ProposalRejected, parse_proposal
from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.records import Trial
from bilevel.inner.search_config import SearchConfig
from bilevel.inner.space import CategoricalParam, FloatParam, IntParam, SimplexParam, Space
from bilevel.outer.llm import model_ref

SPACE = Space((FloatParam("lr", 1e-4, 1.0, log=True), IntParam("layers", 1, 8), CategoricalParam("act", ("relu", "gelu")),
               SimplexParam("mix", ("web", "code"))))
INCUMBENT = {"lr": 0.01, "layers": 2, "act": "relu", "mix": {"web": 0.5, "code": 0.5}}


def test_parse_accepts_repairs_and_rejects() -> None:
    config, hypothesis, repairs = parse_proposal(
        'Sure!\n```json\n{"changes": {"lr": 3.0, "layers": 4.6, "mix": {"web": 3, "code": 1}}, '
        '"hypothesis": "bigger steps\\nsecond line"}\n```', SPACE, INCUMBENT, set())
    assert config == {"lr": 1.0, "layers": 5, "act": "relu", "mix": {"web": 0.75, "code": 0.25}}
    assert hypothesis == "bigger steps"
    assert any("clipped lr" in r for r in repairs) and any("renormalised mix" in r for r in repairs)
    assert any("rounded layers" in r for r in repairs)
    config, _, repairs = parse_proposal('{"changes": {"lr": 0.1, "layers": 3}}', SPACE, INCUMBENT, {"layers"})
    assert config["layers"] == 2 and config["lr"] == 0.1 and repairs == ["ignored a change to frozen layers"]
    for text, reason in [("no json here", "no JSON object"), ('{"changes": {"depth": 3}}', "unknown parameters"),
                         ('{"changes": {"act": "tanh"}}', "not one of"), ('{"changes": {}}', "changes nothing"),
                         ('{"changes": {"lr": "fast"}}', "finite number"), ('{"change": {"lr": 0.1}}', "must be"),
                         ('{"changes": {"mix": {"web": 1}}}', "exactly the domains"), ("{bad json}", "does not parse")]:
        with pytest.raises(ProposalRejected, match=reason):
            parse_proposal(text, SPACE, INCUMBENT, set())


@dataclass
class Garbage:
    """A model that never answers usefully."""

    spec: str = "test:garbage"
    calls: int = 0

    def complete(self, request: ChatRequest, settings: ChatSettings) -> ChatReply:
        self.calls += 1
        return ChatReply("I would rather not say.", 10, 5, "garbage")


def test_garbage_is_rejected_with_reasons_then_the_fallback_proposes() -> None:
    model = Garbage()
    ref = ModelRef("test:garbage", ChatSettings())
    proposer = LLMProposer(SPACE, SearchConfig(), 7, ref, context="run:x", retries=2, caller=Caller(ref, model))
    incumbent = Trial(0, INCUMBENT, 1.0, True, "base:llm-fallback")
    proposer.tell(incumbent)
    config = proposer.propose(1, incumbent, {})
    SPACE.validate(config)
    assert proposer.last_source == "base:llm-fallback" and model.calls == 3
    records = proposer.call_records()
    assert [r["outcome"][:30] for r in records] == ["rejected: no JSON object in th"] * 3
    assert [r["context"] for r in records] == ["run:x:t1:a0:r0", "run:x:t1:a0:r1", "run:x:t1:a0:r2"]
    assert len(records[2]["messages"]) == 5 and "Rejected:" in records[2]["messages"][-1][1]


def test_an_inner_run_with_the_scripted_model_records_its_calls() -> None:
    from bilevel.judge.benchmarks import get_benchmark

    bench = get_benchmark("bbob", {"functions": [1], "dimensions": [2], "instance_ids": [1]})
    inst = bench.instances()[0]
    settings = InnerSettings(budget=12, model=model_ref("scripted:demo"))
    result = run_inner(bench.objective(inst, 0), [], settings, seed=5)
    sources = {t.source for t in result.trials}
    assert "base:llm" in sources and "base:llm-fallback" in sources  # the first trial is a random start
    assert result.llm_calls and all(c["level"] == "inner" and c["outcome"] for c in result.llm_calls)
    outcomes = {c["outcome"].split(":")[0] for c in result.llm_calls}
    assert "accepted" in outcomes
    again = run_inner(bench.objective(inst, 0), [], settings, seed=5)
    assert [t.config for t in again.trials] == [t.config for t in result.trials]


def test_values_that_would_overflow_or_pass_by_equality_are_refused() -> None:
    """An answer with 1e308 weights, a 400-digit int or True for the choice 1 is refused or repaired, never a crash."""
    from bilevel.inner.llm_proposer import ProposalRejected, _repair_value
    from bilevel.inner.space import CategoricalParam, FloatParam, SimplexParam, Space

    space = Space([FloatParam("x", 0.0, 1.0), CategoricalParam("k", (1, "b")), SimplexParam("mix", ("a", "b"))])
    repairs: list[str] = []
    assert _repair_value(space, "mix", {"a": 1e308, "b": 1e308}, repairs) == {"a": 0.5, "b": 0.5}
    with pytest.raises(ProposalRejected, match="finite number"):
        _repair_value(space, "x", 10**400, repairs)
    with pytest.raises(ProposalRejected, match="not one of"):
        _repair_value(space, "k", True, repairs)
    with pytest.raises(ProposalRejected, match="not one of"):
        _repair_value(space, "k", 1.0, repairs)
    assert _repair_value(space, "k", 1, repairs) == 1
