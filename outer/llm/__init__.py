"""The LLM clients: one chat protocol (``inner.chat``), several backends.

A model is named ``backend:model`` everywhere:

- ``anthropic:claude-...``: the official SDK, Messages API (``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``);
- ``ollama:qwen2.5:7b``: the official client, ``/api/chat`` (``OLLAMA_HOST``), streaming or not;
- ``mlx:/path/to/model``: mlx-lm generation (Apple silicon; CPU on Linux with ``mlx[cpu]``);
- ``scripted:demo`` or ``scripted:/path/script.json``: deterministic answers, for tests and demos;
- ``replay:/path/transcripts.json``: answers from a run's recorded calls (``bilevel replay``).

:func:`model_ref` makes the picklable :class:`~inner.chat.ModelRef` a run
records; :func:`build_model` (its factory) builds the backend where it is used.
"""

from __future__ import annotations

from typing import Any

from bilevel.inner.chat import ChatConfigError, ChatModel, ChatSettings, ModelRef
from bilevel.outer.llm.pricing import price_for

BACKENDS = ("anthropic", "ollama", "mlx", "scripted", "replay")


def parse_spec(spec: str) -> tuple[str, str]:
    """``(backend, model)`` of a ``backend:model`` spec; ChatConfigError says what a spec looks like."""
    backend, sep, name = spec.partition(":")
    if not sep or not name or backend not in BACKENDS:
        raise ChatConfigError(f"model {spec!r} is not backend:model; backends are {', '.join(BACKENDS)} "
                              "(e.g. ollama:qwen2.5:7b, anthropic:claude-sonnet-4-5, mlx:/path/to/model)")
    return backend, name


def model_ref(spec: str, settings: ChatSettings | None = None, prices: dict[str, Any] | None = None,
              options: dict[str, str] | None = None) -> ModelRef:
    """The reference a run records for ``spec``, with its price (the table, overridden by ``prices``)."""
    parse_spec(spec)
    return ModelRef(spec, settings or ChatSettings(), "bilevel.outer.llm:build_model", price_for(spec, prices or {}),
                    tuple(sorted((options or {}).items())))


def build_model(ref: ModelRef) -> ChatModel:
    """Build the backend of ``ref`` (the factory ``ModelRef.build`` calls, in whichever process)."""
    backend, _ = parse_spec(ref.spec)
    if backend == "anthropic":
        from bilevel.outer.llm.anthropic_backend import AnthropicModel

        return AnthropicModel(ref)
    if backend == "ollama":
        from bilevel.outer.llm.ollama_backend import OllamaModel

        return OllamaModel(ref)
    if backend == "mlx":
        from bilevel.outer.llm.mlx_backend import MlxModel

        return MlxModel(ref)
    if backend == "scripted":
        from bilevel.outer.llm.scripted import ScriptedModel

        return ScriptedModel(ref)
    from bilevel.outer.llm.replay import ReplayModel

    return ReplayModel(ref)


__all__ = ["BACKENDS", "build_model", "model_ref", "parse_spec"]
