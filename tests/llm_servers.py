"""Loopback servers that speak the providers' real wire protocols, answering with the scripted brain.

- :class:`AnthropicServer`: ``POST /v1/messages`` (Messages API JSON, with the
  ``usage`` block; errors as ``{"type": "error", "error": {...}}`` with their
  status codes: 401, 404, 429, 529). It keeps a prompt cache as the API does:
  a block marked ``cache_control`` writes the prefix up to it (when that prefix
  has at least ``min_cache_tokens``), a later request whose prefix matches a
  written one reads it; usage reports ``cache_creation_input_tokens`` and
  ``cache_read_input_tokens`` and leaves both out of ``input_tokens``.
- :class:`OllamaServer`: ``POST /api/chat``, streaming (NDJSON chunks, the last
  with ``done`` and the token counts) or not; ``{"error": ...}`` with 404; ``/api/show`` (the
  model's context length); a prompt over the request's ``num_ctx`` loses its start, as Ollama's
  does, and the server notes it (``violations``).

Both honour the request's token limit (``max_tokens``; ``options.num_predict``) as real servers
do: a longer answer is cut there and marked (``stop_reason: "max_tokens"``; ``done_reason:
"length"``). ``canned`` answers, one per request, replace the scripted brain (recorded answers
shaped like a real model's); ``script`` gives the brain other author answers (:func:`realistic_script`:
mechanisms of a real answer's size); ``tokens`` counts tokens (default: words, as ``scripted:`` does;
:func:`realistic_tokens`: about a real tokenizer).

``faults`` is a list of status codes to answer, one per request, before the
normal answers. Each server runs on 127.0.0.1 in a daemon thread and shuts
itself down after ``lifetime_s`` if nobody stopped it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bilevel.outer.llm.scripted import ScriptedBrain, token_count

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


class _Server:
    def __init__(self, faults: list[int] | None = None, lifetime_s: float = 300.0, known_model: str = "",
                 canned: list[str] | None = None, tokens: Callable[[str], int] = token_count,
                 script: dict[str, Any] | None = None) -> None:
        self.brain = ScriptedBrain(script)
        self.tokens = tokens  # how the server counts tokens (default: words, as the scripted backend does)
        self.canned = list(canned or [])
        self.faults = list(faults or [])
        self.requests: list[dict[str, Any]] = []
        self.usage = {"in": 0, "out": 0, "cache_write": 0, "cache_read": 0}
        self.prompt_cache: dict[str, int] = {}  # prefix hash -> its length in tokens (Anthropic's cache)
        self.known_model = known_model
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.handle(self, self.path, body)

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                outer.handle(self, self.path, {})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.timer = threading.Timer(lifetime_s, self.stop)
        self.timer.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> _Server:
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_fault(self, body: dict[str, Any]) -> int | None:
        with self.lock:
            self.requests.append(body)
            if self.known_model and body.get("model") != self.known_model:
                return 404
            return self.faults.pop(0) if self.faults else None

    def count(self, text_in: str, text_out: str) -> tuple[int, int]:
        tin, tout = self.tokens(text_in), self.tokens(text_out)
        with self.lock:
            self.usage["in"] += tin
            self.usage["out"] += tout
        return tin, tout

    def handle(self, h: BaseHTTPRequestHandler, path: str, body: dict[str, Any]) -> None:
        raise NotImplementedError


def _answer(server: _Server, system: str, messages: list[dict[str, Any]], limit: int | None) -> tuple[str, bool]:
    """The next answer (canned or scripted) cut at ``limit`` tokens, and whether it was cut."""
    with server.lock:
        text = server.canned.pop(0) if server.canned else ""
    if not text:
        text = server.brain.answer(system, messages)
    if limit is not None and server.tokens(text) > limit:
        if server.tokens is not token_count:  # cut where the server's own count reaches the limit
            return text[:_cut_at(server.tokens, text, limit)], True
        cut = re.match(r"\s*(?:\S+\s+){" + str(limit) + "}", text)
        return text[: cut.end() if cut else len(text)], True
    return text, False


def _cut_at(tokens: Callable[[str], int], text: str, limit: int) -> int:
    """The longest prefix of ``text`` (in characters) that ``tokens`` counts at most ``limit``."""
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if tokens(text[:mid]) <= limit else (low, mid - 1)
    return low


def realistic_script() -> dict[str, Any]:
    """Author answers of a capable model's size: built-in mechanisms (3-4k characters each, with their
    docstrings), and one draft the sandbox refuses (so some candidates take a repair, as real ones do)."""
    from bilevel.mechanisms.library import load_source
    from bilevel.outer.llm.scripted import BROKEN_MECHANISM

    names = ("trust_region", "quad_surrogate", "ucb_bandit", "restart_plateau", "cma_rank_one", "elite_crossover")
    answers = [load_source(n) for n in names]
    return {"author": [*answers[:3], BROKEN_MECHANISM, *answers[3:]]}


def realistic_tokens(text: str) -> int:
    """About a real tokenizer's count: 3.6 characters per token (the default author prompt, 23-31k
    characters, was 6.4-8.7k tokens: shared/FACTS.md)."""
    return -(-len(text) * 10 // 36)


def _send(h: BaseHTTPRequestHandler, status: int, payload: Any, content_type: str = "application/json") -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def _blocks(content: Any) -> list[dict[str, Any]]:
    """A system prompt or a message's content as text blocks (a plain string is one unmarked block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if b.get("type") == "text"]


class AnthropicServer(_Server):
    """The Messages API on loopback, with its prompt cache (see the module doc)."""

    min_cache_tokens = 1024

    def cache(self, body: dict[str, Any]) -> tuple[int, int, int]:
        """(uncached input, cache writes, cache reads) of a request, in tokens; updates the cache."""
        seq = [("system", b) for b in _blocks(body.get("system", ""))]
        seq += [(m["role"], b) for m in body["messages"] for b in _blocks(m["content"])]
        total, read, written, prefix = 0, 0, 0, ""
        with self.lock:
            cached = self.prompt_cache
            for role, block in seq:
                total += self.tokens(block["text"])
                prefix = hashlib.sha256(f"{prefix}|{role}|{block['text']}".encode()).hexdigest()
                if prefix in cached:
                    read = total
                elif block.get("cache_control") and total >= self.min_cache_tokens:
                    cached[prefix] = total
                    written = total
            write = max(0, written - read)
            self.usage["cache_write"] += write
            self.usage["cache_read"] += read
        return total - read - write, write, read

    def handle(self, h: BaseHTTPRequestHandler, path: str, body: dict[str, Any]) -> None:
        if path != "/v1/messages":
            _send(h, 404, {"type": "error", "error": {"type": "not_found_error", "message": f"no route {path}"}})
            return
        fault = self.next_fault(body)
        if fault is not None:
            message = f"model: {body.get('model')}" if fault == 404 else f"injected {fault}"
            _send(h, fault, {"type": "error", "error": {"type": ERROR_TYPES.get(fault, "api_error"),
                                                        "message": message}})
            return
        messages = [{"role": m["role"], "content": "".join(b["text"] for b in _blocks(m["content"]))}
                    for m in body["messages"]]
        system = "".join(b["text"] for b in _blocks(body.get("system", "")))
        text, cut = _answer(self, system, messages, body.get("max_tokens"))
        tin, write, read = self.cache(body)
        _, tout = self.count("", text)
        with self.lock:
            self.usage["in"] += tin
        _send(h, 200, {"id": f"msg_{len(self.requests)}", "type": "message", "role": "assistant",
                       "model": body["model"], "content": [{"type": "text", "text": text}],
                       "stop_reason": "max_tokens" if cut else "end_turn", "stop_sequence": None,
                       "usage": {"input_tokens": tin, "output_tokens": tout,
                                 "cache_creation_input_tokens": write, "cache_read_input_tokens": read}})


class OllamaServer(_Server):
    """Ollama's ``/api/chat`` on loopback, streaming or not, with ``/api/show`` and Ollama's context window.

    As the real server does, a chat request's prompt longer than its ``options.num_ctx`` (default
    :attr:`default_ctx`) loses its start silently: the answer is made from what is left. The server
    also keeps what a real one would be given wrongly, in ``violations``: a dropped prompt start, a
    ``num_ctx`` above the model's ``context_length`` (what ``/api/show`` reports), a window too small
    for ``num_predict``. ``shows`` holds the ``/api/show`` requests.
    """

    default_ctx = 4096  # Ollama's window when a request sets none

    def __init__(self, *args: Any, context_length: int = 32768, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context_length = context_length
        self.violations: list[str] = []
        self.shows: list[dict[str, Any]] = []

    def window(self, body: dict[str, Any], system: str, rest: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        """The prompt as the model sees it within ``num_ctx``: the start dropped when it is too long."""
        options = body.get("options") or {}
        ctx = int(options.get("num_ctx") or self.default_ctx)
        predict = int(options.get("num_predict") or 0)
        parts = [system, *(m["content"] for m in rest)]
        total = sum(self.tokens(p) for p in parts)
        with self.lock:
            if ctx > self.context_length:
                self.violations.append(f"num_ctx {ctx} > the model's context length {self.context_length}")
            if total + predict > ctx and total <= ctx:
                self.violations.append(f"num_ctx {ctx} leaves no room for num_predict {predict} "
                                       f"after a {total}-token prompt")
            if total <= ctx:
                return system, rest
            self.violations.append(f"prompt of {total} tokens > num_ctx {ctx}: its start was dropped")
        drop = total - ctx
        kept: list[str] = []
        for part in parts:
            n = self.tokens(part)
            kept.append("" if drop >= n else part[len(part) * drop // max(n, 1):])
            drop = max(0, drop - n)
        return kept[0], [{**m, "content": c} for m, c in zip(rest, kept[1:], strict=True)]

    def handle(self, h: BaseHTTPRequestHandler, path: str, body: dict[str, Any]) -> None:
        if path == "/api/show":  # what Client.show asks for: the model's details and context length
            with self.lock:
                self.shows.append(body)
            if self.known_model and body.get("model") != self.known_model:
                _send(h, 404, {"error": f"model '{body.get('model')}' not found"})
                return
            _send(h, 200, {"modified_at": "2026-11-22T00:00:00Z", "template": "{{ .Prompt }}", "modelfile": "",
                           "parameters": "", "details": {"family": "qwen2", "parameter_size": "7.6B"},
                           "model_info": {"general.architecture": "qwen2",
                                          "qwen2.context_length": self.context_length},
                           "capabilities": ["completion"]})
            return
        if path == "/api/tags":  # what `ollama list` (Client.list) asks for
            models = [self.known_model] if self.known_model else []
            _send(h, 200, {"models": [{"name": m, "model": m, "modified_at": "2026-11-22T00:00:00Z", "size": 1,
                                       "digest": "0" * 64, "details": {}} for m in models]})
            return
        if path != "/api/chat":
            _send(h, 404, {"error": f"no route {path}"})
            return
        fault = self.next_fault(body)
        if fault is not None:
            error = f"model '{body.get('model')}' not found" if fault == 404 else f"injected {fault}"
            _send(h, fault, {"error": error})
            return
        msgs = body["messages"]
        system = "".join(m["content"] for m in msgs if m["role"] == "system")
        rest = [m for m in msgs if m["role"] != "system"]
        system, rest = self.window(body, system, rest)
        text, cut = _answer(self, system, rest, (body.get("options") or {}).get("num_predict"))
        tin, tout = self.count(system + "".join(m["content"] for m in rest), text)
        base = {"model": body["model"], "created_at": "2026-11-22T00:00:00Z"}
        final = {**base, "message": {"role": "assistant", "content": ""}, "done": True,
                 "done_reason": "length" if cut else "stop",
                 "total_duration": 1000, "prompt_eval_count": tin, "eval_count": tout}
        if body.get("stream", True):
            words = text.split(" ")
            lines = [json.dumps({**base, "message": {"role": "assistant", "content": w + (" " if i < len(words) - 1
                                                                                        else "")}, "done": False})
                     for i, w in enumerate(words)]
            lines.append(json.dumps(final))
            _send(h, 200, ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
        else:
            _send(h, 200, {**final, "message": {"role": "assistant", "content": text}})
