"""The Anthropic backend: the official SDK, Messages API.

Honours ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL``. The SDK's own
retries are off: :class:`inner.chat.Caller` retries transient errors (429,
529, 5xx, timeouts, connection errors) with its recorded backoff. The
Messages API of SDK 2.x takes neither a temperature nor a seed: max tokens
and the timeout are sent, temperature and seed are recorded but not sent.

Prompt caching: the system prompt (the static prefix of both levels' prompts)
carries a ``cache_control`` breakpoint, and so does the last message of a
conversation that will go on (an author's repair, a proposer's retry), so the
next turn reads the shared prefix from the cache. Usage's
``cache_creation_input_tokens`` and ``cache_read_input_tokens`` are recorded
on the call and priced (:data:`inner.chat.CACHE_WRITE_FACTOR`,
:data:`inner.chat.CACHE_READ_FACTOR`). The provider caches only prefixes
above its minimum length (1,024 tokens for Sonnet and Opus): a shorter prefix
is sent marked and simply not cached. ``[llm] prompt_cache = false`` sends plain
prompts (for a proxy that refuses ``cache_control``, or to measure what caching saves).
"""

from __future__ import annotations

import os
from typing import Any

import anthropic

from bilevel.inner.chat import (
    ChatConfigError,
    ChatError,
    ChatRateLimited,
    ChatReply,
    ChatRequest,
    ChatSettings,
    ChatTimeout,
    ChatUnavailable,
    ModelRef,
)


class AnthropicModel:
    """``anthropic:MODEL``; built once per process (or inner run) from its ref."""

    def __init__(self, ref: ModelRef) -> None:
        key = os.environ.get("ANTHROPIC_API_KEY", "")
        if not key:
            raise ChatConfigError(f"model {ref.spec!r} needs an API key: set ANTHROPIC_API_KEY "
                                  "(or use a local model: --model ollama:qwen2.5:7b)")
        self.spec = ref.spec
        self.name = ref.name
        self.base_url = os.environ.get("ANTHROPIC_BASE_URL") or None
        self.client = anthropic.Anthropic(api_key=key, base_url=self.base_url, max_retries=0,
                                          timeout=ref.settings.timeout_s)
        self.cache = ref.option("prompt_cache", "true") == "true"  # [llm] prompt_cache

    def complete(self, request: ChatRequest, settings: ChatSettings) -> ChatReply:
        """One Messages API call; provider errors become :mod:`inner.chat` errors that say what to do."""
        where = self.base_url or "api.anthropic.com"
        try:
            system: Any = cached_system(request.system) if self.cache else request.system
            messages: Any = cached_messages(request) if self.cache else request.messages_json()
            resp = self.client.messages.create(model=self.name, max_tokens=settings.max_tokens, system=system,
                                               messages=messages, timeout=settings.timeout_s)
        except anthropic.AuthenticationError as exc:
            raise ChatConfigError(f"{where} refused the API key (401): check ANTHROPIC_API_KEY") from exc
        except anthropic.NotFoundError as exc:
            raise ChatConfigError(f"{where} does not know model {self.name!r} (404); "
                                  f"check the name: {_detail(exc)}") from exc
        except anthropic.RateLimitError as exc:
            raise ChatRateLimited(f"{where} rate-limited the call (429): {_detail(exc)}") from exc
        except anthropic.APITimeoutError as exc:
            raise ChatTimeout(f"{where} did not answer within {settings.timeout_s:g} s") from exc
        except anthropic.APIConnectionError as exc:
            raise ChatUnavailable(f"cannot reach {where}: {exc}; check the network or ANTHROPIC_BASE_URL") from exc
        except anthropic.APIStatusError as exc:
            if exc.status_code == 529:
                raise ChatRateLimited(f"{where} is overloaded (529): {_detail(exc)}") from exc
            if exc.status_code >= 500:
                raise ChatUnavailable(f"{where} failed with {exc.status_code}: {_detail(exc)}") from exc
            raise ChatError(f"{where} refused the request ({exc.status_code}): {_detail(exc)}") from exc
        text = "".join(getattr(b, "text", "") for b in resp.content if getattr(b, "type", "") == "text")
        usage = resp.usage
        return ChatReply(text, int(usage.input_tokens), int(usage.output_tokens), str(resp.model),
                         truncated=resp.stop_reason == "max_tokens",
                         cache_write_tokens=int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
                         cache_read_tokens=int(getattr(usage, "cache_read_input_tokens", 0) or 0))


CACHE = {"type": "ephemeral"}


def cached_system(system: str) -> list[dict[str, Any]]:
    """The system prompt as one text block with a cache breakpoint (the static prefix of every call)."""
    return [{"type": "text", "text": system, "cache_control": CACHE}]


def cached_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """The messages as text blocks; the last one carries a breakpoint when the conversation may go on.

    An author's conversation goes on whenever its answer fails a check (repairs are common), a
    proposer's only after a rejected answer: so the author's first message is always marked, a
    proposer's first message never (most proposer calls are one turn, and a write costs 1.25x).
    """
    out: list[dict[str, Any]] = [{"role": role, "content": [{"type": "text", "text": text}]}
                                 for role, text in request.messages]
    if out and (request.level == "author" or len(out) > 1):
        out[-1]["content"][0]["cache_control"] = CACHE
    return out


def _detail(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", body))[:300]
    return str(exc)[:300]
