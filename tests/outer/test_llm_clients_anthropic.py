"""The Anthropic client's prompt caching can be switched off (``[llm] prompt_cache = false``): plain prompts,
no cache tokens, every input token at the full price."""

from __future__ import annotations

import pytest
from llm_servers import AnthropicServer

from bilevel.inner.chat import Caller, ChatRequest, ChatSettings
from bilevel.outer.llm import model_ref

SYSTEM = "You are the mechanism author. " + "word " * 1200  # long enough to be cached when asked


@pytest.mark.parametrize("cache", [True, False])
def test_prompt_cache_on_and_off(cache: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    with AnthropicServer() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        ref = model_ref("anthropic:claude-sonnet-test", ChatSettings(retries=0, max_tokens=4000),
                        options={"prompt_cache": "true" if cache else "false"})
        caller = Caller(ref)
        records = [caller.ask(ChatRequest(SYSTEM, (("user", f"Write candidate {i} of generation 0"),), "author",
                                          f"g0:c{i}:r0")) for i in (1, 2)]
    marked = ["cache_control" in str(r) for r in server.requests]
    assert marked == [cache, cache]
    if cache:
        assert records[0].cache_write_tokens > 1200 and records[1].cache_read_tokens >= 1200
    else:
        assert all(r.cache_write_tokens == r.cache_read_tokens == 0 for r in records)
        assert records[1].cost_usd == pytest.approx((records[1].tokens_in * 3 + records[1].tokens_out * 15) / 1e6)
