"""The Ollama backend: the official client, ``/api/chat``, streaming (NDJSON) or not.

Honours ``OLLAMA_HOST``. Temperature, seed and max tokens (``num_predict``)
go in ``options``. ``stream`` is a model option: ``--model ollama:NAME`` with
``[llm] stream = true`` streams the answer and joins its chunks.
"""

from __future__ import annotations

import os
from typing import Any

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


class OllamaModel:
    """``ollama:NAME`` (for example ``ollama:qwen2.5:7b``)."""

    def __init__(self, ref: ModelRef) -> None:
        self.spec = ref.spec
        self.name = ref.name
        self.host = os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434"
        self.stream = ref.option("stream", "false") == "true"
        self.client = ollama.Client(host=self.host, timeout=ref.settings.timeout_s)

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

    def complete(self, request: ChatRequest, settings: ChatSettings) -> ChatReply:
        """One ``/api/chat`` call; errors become :mod:`inner.chat` errors that say what to do."""
        options: dict[str, Any] = {"temperature": settings.temperature, "num_predict": settings.max_tokens}
        if settings.seed is not None:
            options["seed"] = settings.seed
        messages = [{"role": "system", "content": request.system}, *request.messages_json()]
        try:
            if self.stream:
                text, last = "", None
                for chunk in self.client.chat(model=self.name, messages=messages, options=options, stream=True):
                    text += chunk.message.content or ""
                    last = chunk
                if last is None:
                    raise ChatUnavailable(f"ollama at {self.host} streamed nothing")
                return ChatReply(text, int(last.prompt_eval_count or 0), int(last.eval_count or 0),
                                 str(last.model or self.name), truncated=last.done_reason == "length")
            resp = self.client.chat(model=self.name, messages=messages, options=options, stream=False)
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
