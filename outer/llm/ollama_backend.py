"""The Ollama backend: the official client, ``/api/chat``, streaming (NDJSON) or not.

Honours ``OLLAMA_HOST``. Temperature, seed and max tokens (``num_predict``)
go in ``options``. ``stream`` is a model option: ``--model ollama:NAME`` with
``[llm] stream = true`` streams the answer and joins its chunks.

Nothing is cut silently. Ollama drops the start of a prompt longer than the
request's ``num_ctx`` (a few thousand tokens unless set), so every request sets
``num_ctx`` to hold the whole prompt and the answer: the prompt's size at
:data:`CHARS_PER_TOKEN` characters per token (fewer than most tokenizers give,
so the window errs large) plus ``num_predict``, rounded up to a power of two
(so the window, and the loaded model, rarely change), with the model's own
context length (``/api/show``, asked once) as the ceiling. A prompt that
cannot fit there stops the run with :class:`ChatConfigError` saying what to
change. Proposer calls ask for JSON (``format="json"``). ``keep_alive``
(``[llm] keep_alive``, default ``"30m"``) keeps the model loaded between the
calls of a long run.
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal

import httpx
import ollama

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

CHARS_PER_TOKEN = 2.5  # deliberately few: an under-sized window would drop the prompt's start
TEMPLATE_TOKENS = 32  # the chat template's tokens per message
MIN_CTX = 2048


def context_window(prompt_chars: int, messages: int, answer_tokens: int, ceiling: int | None) -> int:
    """``num_ctx`` for a prompt of ``prompt_chars`` characters in ``messages`` messages and an answer of up
    to ``answer_tokens``: a power of two that holds both, at most ``ceiling`` (the model's context length).
    Raises ChatConfigError when the prompt alone cannot fit under the ceiling."""
    prompt = math.ceil(prompt_chars / CHARS_PER_TOKEN) + TEMPLATE_TOKENS * messages
    need = prompt + answer_tokens
    window = max(MIN_CTX, 1 << math.ceil(math.log2(need)))
    if ceiling is None:
        return window
    if prompt >= ceiling:
        raise ChatConfigError(f"the prompt needs about {prompt} tokens but the model's context length is {ceiling} "
                              "(ollama /api/show): use a model with a longer context window")
    return min(window, ceiling)


class OllamaModel:
    """``ollama:NAME`` (for example ``ollama:qwen2.5:7b``)."""

    def __init__(self, ref: ModelRef) -> None:
        self.spec = ref.spec
        self.name = ref.name
        self.host = os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434"
        self.stream = ref.option("stream", "false") == "true"
        self.keep_alive = ref.option("keep_alive", "30m")
        self.client = ollama.Client(host=self.host, timeout=ref.settings.timeout_s)
        self._context: int | None = None
        self._asked = False

    def context_length(self) -> int | None:
        """The model's context length from ``/api/show`` (asked once); None when the server does not say."""
        if not self._asked:
            try:
                info = self.client.show(self.name).modelinfo or {}
            except ollama.ResponseError:
                info = {}
            except (ConnectionError, httpx.HTTPError) as exc:
                raise ChatUnavailable(f"cannot reach ollama at {self.host}: start it with `ollama serve` "
                                      "or set OLLAMA_HOST") from exc
            arch = info.get("general.architecture", "")
            found = info.get(f"{arch}.context_length") or next(
                (v for k, v in info.items() if k.endswith(".context_length")), None)
            self._context = int(found) if isinstance(found, int | float) and found > 0 else None
            self._asked = True
        return self._context

    def options(self, request: ChatRequest, settings: ChatSettings) -> dict[str, Any]:
        """The request's ``options``: temperature, seed, ``num_predict`` and a ``num_ctx`` that holds it all."""
        options: dict[str, Any] = {"temperature": settings.temperature, "num_predict": settings.max_tokens}
        if settings.seed is not None:
            options["seed"] = settings.seed
        chars = len(request.system) + sum(len(text) for _, text in request.messages)
        ceiling = self.context_length()
        try:
            options["num_ctx"] = context_window(chars, len(request.messages) + 1, settings.max_tokens, ceiling)
        except ChatConfigError as exc:
            what = ("[llm] author_answer_tokens" if request.level == "author" else "[llm] max_tokens")
            raise ChatConfigError(f"ollama model {self.name!r}, {request.level} call {request.context}: {exc} "
                                  f"(the answer's room is {what} = {settings.max_tokens})") from exc
        return options

    def probe(self) -> None:
        """Check that the server answers and has the model; called once when a run is created."""
        try:
            names = {m.model for m in self.client.list().models}
        except (ConnectionError, httpx.HTTPError, ollama.ResponseError) as exc:
            raise ChatUnavailable(f"cannot reach ollama at {self.host}: start it with `ollama serve` "
                                  "or set OLLAMA_HOST") from exc
        if names and self.name not in names and f"{self.name}:latest" not in names:
            raise ChatConfigError(f"ollama at {self.host} has no model {self.name!r}: run `ollama pull {self.name}` "
                                  f"(it has {', '.join(sorted(n for n in names if n)) or 'none'})")
        self.context_length()  # the ceiling of every request's num_ctx, asked once

    def complete(self, request: ChatRequest, settings: ChatSettings) -> ChatReply:
        """One ``/api/chat`` call; errors become :mod:`inner.chat` errors that say what to do."""
        options = self.options(request, settings)
        messages = [{"role": "system", "content": request.system}, *request.messages_json()]
        fmt: Literal["json"] | None = "json" if request.level == "inner" else None  # the proposer answers in JSON
        try:
            if self.stream:
                text, last = "", None
                for chunk in self.client.chat(model=self.name, messages=messages, options=options, stream=True,
                                              format=fmt, keep_alive=self.keep_alive):
                    text += chunk.message.content or ""
                    last = chunk
                if last is None:
                    raise ChatUnavailable(f"ollama at {self.host} streamed nothing")
                return ChatReply(text, int(last.prompt_eval_count or 0), int(last.eval_count or 0),
                                 str(last.model or self.name), truncated=last.done_reason == "length")
            resp = self.client.chat(model=self.name, messages=messages, options=options, stream=False,
                                    format=fmt, keep_alive=self.keep_alive)
            return ChatReply(resp.message.content or "", int(resp.prompt_eval_count or 0), int(resp.eval_count or 0),
                             str(resp.model or self.name), truncated=resp.done_reason == "length")
        except ollama.ResponseError as exc:
            status = exc.status_code
            if status == 404:
                raise ChatConfigError(f"ollama at {self.host} has no model {self.name!r}: "
                                      f"run `ollama pull {self.name}` ({exc.error})") from exc
            if status in (429, 503):
                raise ChatRateLimited(f"ollama at {self.host} is busy ({status}): {exc.error}") from exc
            if status >= 500 or status == -1:
                raise ChatUnavailable(f"ollama at {self.host} failed ({status}): {exc.error}") from exc
            raise ChatError(f"ollama at {self.host} refused the request ({status}): {exc.error}") from exc
        except ConnectionError as exc:
            raise ChatUnavailable(f"cannot reach ollama at {self.host}: start it with `ollama serve` "
                                  "or set OLLAMA_HOST") from exc
        except httpx.TimeoutException as exc:
            raise ChatTimeout(f"ollama at {self.host} did not answer within {settings.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise ChatUnavailable(f"ollama at {self.host}: {exc}") from exc
