"""Recorded, realistic author answers (tests/fixtures/author_answers.json) through the real clients.

The loopback servers answer with the recorded texts through the anthropic and ollama clients; the
LLM author does what it does in a run: it extracts the source, refuses and feeds back what cannot be
judged (an answer cut at the token limit, an over-long source), checks the rest with the real
conformance check, and makes candidates of what passes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from llm_servers import AnthropicServer, OllamaServer

from bilevel.inner.chat import Caller, CallRecord, ChatSettings
from bilevel.inner.search_config import SearchConfig
from bilevel.inner.space import Space
from bilevel.judge.conformance import check_conformance
from bilevel.judge.stack import Stack
from bilevel.outer.authors.base import AuthorContext
from bilevel.outer.authors.llm import FEEDBACK_PREFIX, MAX_MECHANISM_CHARS, LLMAuthor, extract_source
from bilevel.outer.llm import model_ref
from bilevel.outer.traces import analyse

FIXTURE = json.loads((Path(__file__).parent.parent / "fixtures" / "author_answers.json").read_text())
SPACE = Space.from_json({"params": [{"name": "x0", "type": "float", "low": -5.0, "high": 5.0, "log": False},
                                    {"name": "x1", "type": "float", "low": -5.0, "high": 5.0, "log": False}]})
REPORTS: dict[str, dict[str, Any]] = {}


def _check(source: str) -> dict[str, Any]:
    """The outer loop's conformance check, at a few examples (shared between the two backends)."""
    if source not in REPORTS:
        REPORTS[source] = check_conformance(source, max_examples=3).to_json()
    return REPORTS[source]


def test_the_fixture_is_what_it_says() -> None:
    source = FIXTURE["json_then_python"]["source"]
    assert len(source) > 9_000 and "```json" in FIXTURE["json_then_python"]["answer"]
    assert FIXTURE["over_long"]["source_chars"] > MAX_MECHANISM_CHARS
    assert FIXTURE["two_python_blocks"]["answer"].count("```python") == 2
    limit = FIXTURE["max_tokens"]
    assert len(FIXTURE["cut_at_limit"]["answer"].split()) > limit  # the server will cut it, mid-code
    assert all(len(FIXTURE[k]["answer"].split()) < limit for k in ("json_then_python", "over_long", "two_python_blocks"))


@pytest.mark.parametrize("backend", ["anthropic", "ollama"])
def test_recorded_answers_through_the_real_clients(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    canned = [FIXTURE[k]["answer"] for k in ("cut_at_limit", "over_long", "json_then_python", "two_python_blocks")]
    server_cls: Any = AnthropicServer if backend == "anthropic" else OllamaServer
    limit = int(FIXTURE["max_tokens"])
    with server_cls(canned=canned) as server:
        if backend == "anthropic":
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        else:
            monkeypatch.setenv("OLLAMA_HOST", server.url)
        caller = Caller(model_ref(f"{backend}:test-model", ChatSettings(retries=0, timeout_s=30.0, max_tokens=limit)))
        author = LLMAuthor(caller, _check, repairs=2)
        ctx = AuthorContext(0, 0, Stack((), SearchConfig()), (), analyse(SPACE, []), frozenset())
        candidates = author.propose(ctx, 2)
    records = {r.context: r for r in caller.records}
    assert list(records) == ["g0:c0:r0", "g0:c0:r1", "g0:c0:r2", "g0:c1:r0"]
    cut = records["g0:c0:r0"]
    assert cut.truncated and cut.tokens_out == limit and "```python" in cut.response
    partial = extract_source(cut.response)[0]  # cut mid-code: a prefix of the source, never judged
    assert len(partial) < len(FIXTURE["json_then_python"]["source"]) // 2
    assert FIXTURE["json_then_python"]["source"].startswith(partial.rstrip().rsplit("\n", 1)[0])
    assert CallRecord.from_json(cut.to_json()).truncated  # the store keeps the flag
    assert records["g0:c0:r1"].messages[-1][1].startswith(
        f"{FEEDBACK_PREFIX}truncated: answer truncated at {limit} tokens")
    over = FIXTURE["over_long"]["source_chars"]
    assert f"{over} characters > {MAX_MECHANISM_CHARS}" in records["g0:c0:r2"].messages[-1][1]
    assert not any(r.truncated for c, r in records.items() if c != "g0:c0:r0")

    first, second = candidates
    assert first.new[0].source == FIXTURE["json_then_python"]["source"]  # whole, from the python block
    assert first.operation.startswith("llm: llm-g0c0-quadratic-surrogate-inside: Let me think this through first.")
    assert second.new[0].source == FIXTURE["two_python_blocks"]["source"]  # the block that defines hooks
    assert REPORTS[first.new[0].source]["ok"] and REPORTS[second.new[0].source]["ok"]
