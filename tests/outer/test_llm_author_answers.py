"""Answers shaped like a real model's: prose, a ```json block, long sources, two Python blocks, cuts.

Nothing is cut silently: the source is taken whole from the fenced Python block that defines a
hook; a source over the limit is refused with its length; an answer the server cut at the token
limit (Anthropic ``stop_reason: max_tokens``, Ollama ``done_reason: length``) is recorded as
truncated and fed back, never judged.
"""

from __future__ import annotations

from typing import Any

import pytest
from llm_servers import AnthropicServer, OllamaServer

from bilevel.inner.chat import Caller, CallRecord, ChatRequest, ChatSettings
from bilevel.outer.authors.llm import MAX_MECHANISM_CHARS, answer_problem, extract_source, fenced_blocks
from bilevel.outer.llm import model_ref

HOOKED = 'def propose(ctx, state):\n    """Propose the centre."""\n    return None\n'


def _long_mechanism(chars: int) -> str:
    body = "".join(f"    w{i} = {i} * 0.5  # a constant the surrogate weighs\n" for i in range(chars // 44))
    return '"""A long surrogate."""\n\n\ndef guide(ctx, state):\n' + body + "    return {}\n"


def test_a_json_block_before_the_python_block_is_not_taken() -> None:
    source = _long_mechanism(9_000)
    assert len(source) > 8_900
    answer = ("Looking at the traces, the search stalls on plateaus. My plan:\n\n```json\n"
              '{"idea": "surrogate", "params": ["x0", "x1"]}\n```\n\nHere is the mechanism:\n\n```python\n'
              + source + "```\n\nIt fits a quadratic model and screens candidates.")
    got, summary = extract_source(answer)
    assert got == source and summary.startswith("Looking at the traces")
    assert answer_problem(got, False, 2000) is None  # 9,000 characters is within the stated limit


def test_of_two_python_blocks_the_one_defining_hooks_wins() -> None:
    helper = "def clamp(x):\n    return min(1.0, max(0.0, x))\n" * 3
    answer = f"A helper first:\n```python\n{helper}```\nthen the mechanism:\n```py\n{HOOKED}```\n"
    assert extract_source(answer)[0] == HOOKED
    assert [tag for tag, _ in fenced_blocks(answer)] == ["python", "py"]


def test_an_over_long_source_is_refused_with_its_length_not_cut() -> None:
    source = _long_mechanism(MAX_MECHANISM_CHARS + 500)
    problem = answer_problem(source, False, 3000)
    assert problem is not None and problem["status"] == "too_long"
    assert f"{len(source)} characters > {MAX_MECHANISM_CHARS}" in problem["message"]


def test_an_open_fence_at_the_end_is_still_a_block() -> None:
    assert fenced_blocks("prose\n```python\ndef propose(ctx, state):\n    x = ")[0] == (
        "python", "def propose(ctx, state):\n    x = ")


def _cut_answer() -> str:
    return "I will write a trust region.\n\n```python\n" + _long_mechanism(3_000) + "```\n"


@pytest.mark.parametrize("backend", ["anthropic", "ollama"])
def test_a_cut_answer_is_recorded_as_truncated(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server_cls: Any = AnthropicServer if backend == "anthropic" else OllamaServer
    with server_cls(canned=[_cut_answer(), _cut_answer()]) as server:
        if backend == "anthropic":
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        else:
            monkeypatch.setenv("OLLAMA_HOST", server.url)
        short = ChatSettings(retries=0, timeout_s=10.0, max_tokens=40)
        ref = model_ref(f"{backend}:test-model", short)
        record = Caller(ref).ask(ChatRequest("system", (("user", "write a mechanism"),), "author", "g0:c0:r0"))
        assert record.truncated and record.tokens_out == 40 and record.response
        source, _ = extract_source(record.response)
        problem = answer_problem(source, record.truncated, record.tokens_out)
        assert problem is not None and problem["message"].startswith("answer truncated at 40 tokens")
        roomy = Caller(model_ref(f"{backend}:test-model", ChatSettings(retries=0, timeout_s=10.0, max_tokens=8192)))
        whole = roomy.ask(ChatRequest("system", (("user", "again"),), "author", "g0:c0:r1"))
        assert not whole.truncated and extract_source(whole.response)[0] == _long_mechanism(3_000)
        assert CallRecord.from_json(record.to_json()).truncated is True  # the store keeps the flag
