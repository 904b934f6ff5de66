"""The chat protocol the inner loop (and the outer author) talk to a language model through.

The inner loop defines it; backends (``outer.llm``: anthropic, ollama, mlx,
scripted, replay) implement it. A model is named ``backend:model``
(``ollama:qwen2.5:7b``, ``anthropic:claude-...``, ``mlx:/path/to/model``).

Every call gives a :class:`CallRecord`: the prompt, the response, the model,
its settings, tokens in and out, latency, cost and the error if it failed.
Records are plain JSON, stored in the run, and the ``replay`` backend answers
from them, matched by :func:`request_key` and by order of occurrence.

Inner runs may execute in worker processes, so a model is passed around as a
:class:`ModelRef` (a picklable description) and built where it is used with
the factory the ref names (``module:function``, given by the outer layer).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol, runtime_checkable


class ChatError(Exception):
    """A model call failed; the message says what and how to fix it. ``transient`` errors may be retried."""

    transient = False


class ChatConfigError(ChatError):
    """The model is misconfigured: bad spec, missing API key, unknown model, missing package."""


class ChatUnavailable(ChatError):
    """The server cannot be reached, or it answered with a server error (retried with backoff)."""

    transient = True


class ChatRateLimited(ChatUnavailable):
    """The provider refused for rate or load (HTTP 429, 529); retried with backoff."""


class ChatTimeout(ChatUnavailable):
    """The call ran past its timeout; retried with backoff."""


class ReplayDivergence(ChatError):
    """The replay backend has no recorded answer for a request: the code or the inputs changed."""


# Anthropic's prompt-cache prices relative to the input price (5-minute cache): writes cost 1.25x, reads 0.1x.
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1


@dataclass(frozen=True)
class ChatSettings:
    """How a model is called; recorded with every call."""

    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 1024
    timeout_s: float = 120.0
    retries: int = 3  # for transient errors, with exponential backoff
    backoff_s: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChatSettings:
        return cls(**d)


@dataclass(frozen=True)
class ChatRequest:
    """One call: a system prompt, the messages (``{"role": "user"|"assistant", "content": str}``), where from.

    ``level`` is ``"inner"`` (the proposer) or ``"author"``; ``context``
    names the place in the run that made the call (an inner run's entry and
    trial, a generation and attempt of the author): it keeps replay matching
    exact when the same prompt is asked in several places.
    """

    system: str
    messages: tuple[tuple[str, str], ...]
    level: str
    context: str = ""
    prompt_version: str = ""

    def messages_json(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]


def request_key(request: ChatRequest) -> str:
    """The replay key of a request: its level, context, system prompt and messages (not the settings)."""
    body = json.dumps([request.level, request.context, request.system, list(request.messages)], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ChatReply:
    """What a backend returns for one successful call."""

    text: str
    tokens_in: int
    tokens_out: int
    model: str  # the model the server says answered
    truncated: bool = False  # the answer was cut at max_tokens (stop_reason max_tokens, done_reason length)
    cache_write_tokens: int = 0  # prompt tokens written to the provider's prompt cache (Anthropic)
    cache_read_tokens: int = 0  # prompt tokens read from it; neither is counted in ``tokens_in``


@dataclass(frozen=True)
class CallRecord:
    """One model call as stored in the run (also failed ones: ``error`` holds the message)."""

    key: str
    occurrence: int  # 0 for the first call with this key, 1 for the second, ...
    level: str
    context: str
    model: str  # the backend:model spec
    settings: dict[str, Any]
    system: str
    messages: tuple[tuple[str, str], ...]
    response: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    cost_usd: float
    error: str = ""
    error_kind: str = ""
    prompt_version: str = ""
    replayed: bool = False
    truncated: bool = False  # the backend said the answer was cut at ``settings["max_tokens"]``
    cache_write_tokens: int = 0  # prompt-cache writes and reads (Anthropic), priced apart from ``tokens_in``
    cache_read_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["messages"] = [list(m) for m in self.messages]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CallRecord:
        """Read a record back; keys that are not fields (an ``outcome`` the proposer added) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in d.items() if k in known},
                      "messages": tuple((str(r), str(c)) for r, c in d["messages"])})


@runtime_checkable
class ChatModel(Protocol):
    """A language model. ``complete`` is called once per attempt; it raises a :class:`ChatError` on failure."""

    spec: str

    def complete(self, request: ChatRequest, settings: ChatSettings) -> ChatReply: ...


@dataclass(frozen=True)
class ModelRef:
    """A picklable description of a model, rebuilt with :meth:`build` wherever it is used (worker processes).

    ``factory`` is ``"module:function"``; the function takes this ref and
    returns a :class:`ChatModel`. ``prices`` are US dollars per million
    tokens in and out. ``options`` are backend options as sorted pairs.
    """

    spec: str
    settings: ChatSettings = field(default_factory=ChatSettings)
    factory: str = "bilevel.outer.llm:build_model"
    prices: tuple[float, float] = (0.0, 0.0)
    options: tuple[tuple[str, str], ...] = ()

    @property
    def backend(self) -> str:
        return self.spec.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.spec.split(":", 1)[1] if ":" in self.spec else ""

    def option(self, key: str, default: str = "") -> str:
        return dict(self.options).get(key, default)

    def build(self) -> ChatModel:
        module, _, func = self.factory.partition(":")
        try:
            made = getattr(importlib.import_module(module), func)(self)
        except (ImportError, AttributeError) as exc:
            raise ChatConfigError(f"cannot build model {self.spec!r} with factory {self.factory!r}: {exc}") from exc
        if not isinstance(made, ChatModel):
            raise ChatConfigError(f"factory {self.factory!r} returned {type(made).__name__}, not a ChatModel")
        return made

    def cost(self, tokens_in: int, tokens_out: int, cache_write: int = 0, cache_read: int = 0) -> float:
        """US dollars of one call: input and output tokens at their prices; prompt-cache writes at
        :data:`CACHE_WRITE_FACTOR` and reads at :data:`CACHE_READ_FACTOR` times the input price."""
        return (tokens_in * self.prices[0] + tokens_out * self.prices[1]
                + cache_write * self.prices[0] * CACHE_WRITE_FACTOR + cache_read * self.prices[0] * CACHE_READ_FACTOR
                ) / 1e6

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "settings": self.settings.to_json(), "factory": self.factory,
                "prices": list(self.prices), "options": dict(self.options)}


CallLookup = Callable[[str, int], "CallRecord | None"]


class Caller:
    """Calls one model with retries and backoff, and keeps a :class:`CallRecord` of every call.

    ``ask`` is called once per request. Transient errors (unreachable
    server, timeouts, 429/529, server errors) are retried ``settings.retries``
    times with exponential backoff; a call that fails for a non-transient
    reason (a refused request) comes back as a record with ``error`` set and
    the caller falls back. A transient failure that outlasts its retries is
    recorded and then raised as :class:`ChatUnavailable`: the server is down,
    so falling back on every later call would only burn the run; the run stops
    cleanly and ``bilevel resume`` continues it. :class:`ChatConfigError` and
    :class:`ReplayDivergence` also stop the run, since no retry can help. ``lookup`` (optional)
    answers from records of an earlier session of the same run, so a resumed
    run does not pay twice; ``before_call`` (optional) is called before each
    real call and may raise to stop the run (budget caps); ``sink`` (optional)
    gets every new record as soon as it exists (the run store keeps it).
    """

    def __init__(self, ref: ModelRef, model: ChatModel | None = None, *, lookup: CallLookup | None = None,
                 before_call: Callable[[ChatRequest], None] | None = None,
                 sink: Callable[[CallRecord], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.ref = ref
        self._model = model
        self.lookup = lookup
        self.before_call = before_call
        self.sink = sink
        self.sleep = sleep
        self.records: list[CallRecord] = []
        self._seen: dict[str, int] = {}

    @property
    def model(self) -> ChatModel:
        if self._model is None:
            self._model = self.ref.build()
        return self._model

    def ask(self, request: ChatRequest) -> CallRecord:
        key = request_key(request)
        occurrence = self._seen.get(key, 0)
        self._seen[key] = occurrence + 1
        if self.lookup is not None:
            found = self.lookup(key, occurrence)
            if found is not None:
                self.records.append(found)
                return found
        if self.before_call is not None:
            self.before_call(request)
        settings = self.ref.settings
        start = time.perf_counter()
        reply: ChatReply | None = None
        error: ChatError | None = None
        for attempt in range(settings.retries + 1):
            try:
                reply = self.model.complete(request, settings)
                error = None
                break
            except (ChatConfigError, ReplayDivergence):
                raise
            except ChatError as exc:
                error = exc
                if not exc.transient or attempt == settings.retries:
                    break
                self.sleep(settings.backoff_s * (2 ** attempt))
        latency = time.perf_counter() - start
        text = reply.text if reply else ""
        tin = reply.tokens_in if reply else 0
        tout = reply.tokens_out if reply else 0
        cw = reply.cache_write_tokens if reply else 0
        cr = reply.cache_read_tokens if reply else 0
        record = CallRecord(key=key, occurrence=occurrence, level=request.level, context=request.context,
                            model=self.ref.spec, settings=settings.to_json(), system=request.system,
                            messages=request.messages, response=text, tokens_in=tin, tokens_out=tout,
                            latency_s=round(latency, 6), cost_usd=self.ref.cost(tin, tout, cw, cr),
                            error=str(error) if error else "", error_kind=type(error).__name__ if error else "",
                            prompt_version=request.prompt_version,
                            replayed=self.ref.backend == "replay",
                            truncated=bool(reply.truncated) if reply else False,
                            cache_write_tokens=cw, cache_read_tokens=cr)
        self.records.append(record)
        if self.sink is not None:
            self.sink(record)
        if error is not None and error.transient:
            raise ChatUnavailable(f"{self.ref.spec}: {error} (still failing after {settings.retries} retries; "
                                  "the run stopped cleanly: continue it with `bilevel resume RUN` once the "
                                  "model answers)") from error
        return record
