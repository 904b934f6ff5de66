"""Each backend through its real client library, against loopback servers speaking the real wire protocol."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from llm_servers import AnthropicServer, OllamaServer

from bilevel.inner.chat import (
    Caller,
    CallRecord,
    ChatConfigError,
    ChatRequest,
    ChatSettings,
    ChatUnavailable,
    ReplayDivergence,
)
from bilevel.outer.llm import build_model, model_ref, parse_spec
from bilevel.outer.llm.pricing import price_for
from bilevel.outer.llm.scripted import AUTHOR_MARK

FAST = ChatSettings(retries=3, backoff_s=0.001, timeout_s=10.0, max_tokens=256)
PROPOSER_PROMPT = ('Search space:\n[{"name": "x0", "type": "float", "low": -5.0, "high": 5.0, "log": false}]\n\n'
                   'Trial 3.\nIncumbent (best so far): {"config": {"x0": 1.0}, "score": 2.0}\n')
REQUEST = ChatRequest("You are the proposer.", (("user", PROPOSER_PROMPT),), "inner", "t3")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def anthropic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")


def test_specs_and_prices() -> None:
    assert parse_spec("ollama:qwen2.5:7b") == ("ollama", "qwen2.5:7b")
    with pytest.raises(ChatConfigError, match="backend:model"):
        parse_spec("qwen2.5")
    assert price_for("anthropic:claude-sonnet-4-5", {}) == (3.0, 15.0)
    assert price_for("anthropic:claude-sonnet-4-5", {"anthropic:claude-sonnet": [1, 2]}) == (1.0, 2.0)
    assert price_for("ollama:qwen2.5:7b", {}) == (0.0, 0.0)


def test_anthropic_messages_usage_and_transient_errors(anthropic_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with AnthropicServer(faults=[429, 529, 500]) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        ref = model_ref("anthropic:claude-sonnet-test", FAST)
        caller = Caller(ref, sleep=lambda s: None)
        rec = caller.ask(REQUEST)
        assert rec.error == "", rec.error
        assert '"changes"' in rec.response or "bolder" in rec.response
        assert (rec.tokens_in, rec.tokens_out) == (server.usage["in"], server.usage["out"]) != (0, 0)
        assert rec.cost_usd == pytest.approx((rec.tokens_in * 3 + rec.tokens_out * 15) / 1e6)
        assert len(server.requests) == 4  # 429, 529 and 500 were retried
        sent = server.requests[-1]
        assert sent["model"] == "claude-sonnet-test" and sent["max_tokens"] == 256
        assert sent["system"] == [{"type": "text", "text": "You are the proposer.",
                                   "cache_control": {"type": "ephemeral"}}]  # the static prefix, marked for the cache
        assert sent["messages"][0]["role"] == "user" and "cache_control" not in sent["messages"][0]["content"][0]
        assert rec.settings["max_tokens"] == 256 and rec.model == "anthropic:claude-sonnet-test"


def test_anthropic_errors_say_what_to_do(anthropic_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with AnthropicServer(faults=[401, 429, 429, 429, 429], known_model="claude-known") as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        with pytest.raises(ChatConfigError, match="ANTHROPIC_API_KEY"):
            Caller(model_ref("anthropic:claude-known", FAST)).ask(REQUEST)
        kept: list[CallRecord] = []
        with pytest.raises(ChatUnavailable, match="429.*still failing after 3 retries.*bilevel resume"):
            Caller(model_ref("anthropic:claude-known", FAST), sleep=lambda s: None, sink=kept.append).ask(REQUEST)
        (rec,) = kept  # recorded before the run stops
        assert rec.error.startswith(server.url) and "429" in rec.error and rec.error_kind == "ChatRateLimited"
        with pytest.raises(ChatConfigError, match="does not know model 'claude-nope'"):
            Caller(model_ref("anthropic:claude-nope", FAST)).ask(REQUEST)
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ChatConfigError, match="set ANTHROPIC_API_KEY"):
        build_model(model_ref("anthropic:claude-known", FAST))


def test_unreachable_servers_are_transient_and_named(anthropic_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    sleeps: list[float] = []
    for spec in ("anthropic:claude-x", "ollama:qwen2.5:7b"):
        kept: list[CallRecord] = []
        with pytest.raises(ChatUnavailable, match="cannot reach"):
            Caller(model_ref(spec, FAST), sleep=sleeps.append, sink=kept.append).ask(REQUEST)
        assert [r.error_kind for r in kept] == ["ChatUnavailable"] and "cannot reach" in kept[0].error
    assert sleeps == [0.001, 0.002, 0.004] * 2  # exponential backoff, recorded settings
    assert issubclass(ChatUnavailable, Exception)


@pytest.mark.parametrize("stream", [False, True])
def test_ollama_chat_streaming_and_not(stream: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    with OllamaServer(faults=[503], known_model="qwen2.5:7b") as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        ref = model_ref("ollama:qwen2.5:7b", FAST, options={"stream": "true" if stream else "false"})
        rec = Caller(ref, sleep=lambda s: None).ask(REQUEST)
        assert rec.error == ""
        expected = server.brain.answer(REQUEST.system, REQUEST.messages_json())
        assert rec.response == expected
        assert (rec.tokens_in, rec.tokens_out) == (server.usage["in"], server.usage["out"])
        sent = server.requests[-1]
        assert sent["stream"] is stream and sent["options"]["num_predict"] == 256 and sent["options"]["seed"] == 0
        assert sent["messages"][0] == {"role": "system", "content": REQUEST.system}
        with pytest.raises(ChatConfigError, match="ollama pull llama-nope"):
            Caller(model_ref("ollama:llama-nope", FAST)).ask(REQUEST)


def test_scripted_brain_writes_mechanisms_and_repairs() -> None:
    model = build_model(model_ref("scripted:demo"))
    first = (("user", "Write candidate 1 of generation 0: ..."),)
    draft = model.complete(ChatRequest(AUTHOR_MARK, first, "author"), FAST).text
    assert "import os" in draft
    repaired = model.complete(ChatRequest(AUTHOR_MARK, (*first, ("assistant", draft), ("user", "fix it")), "author"),
                              FAST).text
    assert "def review(ctx, state, candidate)" in repaired and "TABU_SIZE" in repaired


def test_replay_answers_from_a_recorded_transcript_and_names_divergence() -> None:
    fixture = Path(__file__).parent.parent / "fixtures" / "transcript_inner.json"
    ref = model_ref(f"replay:{fixture}")
    caller = Caller(ref)
    rec = caller.ask(REQUEST)
    assert rec.response == '{"changes": {"x0": 1.5}, "hypothesis": "recorded answer"}' and rec.replayed
    assert (rec.tokens_in, rec.tokens_out) == (57, 9)
    failed = caller.ask(REQUEST)  # the second occurrence was recorded as a failure
    assert failed.error.startswith("replayed failure: injected 529")
    changed = ChatRequest(REQUEST.system, (("user", PROPOSER_PROMPT.replace("Trial 3", "Trial 4")),), "inner", "t3")
    with pytest.raises(ReplayDivergence, match=r"differs from the recorded one(.|\n)*\+Trial 4"):
        caller.ask(changed)
    with pytest.raises(ReplayDivergence, match="never made"):
        caller.ask(ChatRequest("x", (("user", "y"),), "inner", "elsewhere"))
