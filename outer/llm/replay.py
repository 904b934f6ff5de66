"""The replay backend: answers from a run's recorded calls, so a whole run replays without any model.

``replay:/path/transcripts.json`` names a JSON file with a list of call
records (``inner.chat.CallRecord`` JSON), as ``bilevel replay`` exports them
from a run. A request is matched by its key (level, context, prompt) and its
occurrence; a recorded failure is replayed as a failure. A request with no
recorded answer raises :class:`~inner.chat.ReplayDivergence`, which says
where the run left the recorded path and how the request differs.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from bilevel.inner.chat import (
    ChatConfigError,
    ChatError,
    ChatReply,
    ChatRequest,
    ChatSettings,
    ModelRef,
    ReplayDivergence,
    request_key,
)


class ReplayedFailure(ChatError):
    """The recorded call failed; the replay fails the same way (not retried)."""


@lru_cache(maxsize=4)
def _transcripts(path: str) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ChatConfigError(f"replay transcripts {path!r} cannot be read: {exc}") from exc
    if not isinstance(data, list):
        raise ChatConfigError(f"replay transcripts {path!r} must be a JSON list of call records")
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    by_context: dict[str, list[dict[str, Any]]] = {}
    for rec in data:
        by_key.setdefault((rec["key"], int(rec["occurrence"])), rec)
        by_context.setdefault(rec.get("context", ""), []).append(rec)
    return by_key, by_context


def _first_difference(recorded: dict[str, Any], request: ChatRequest) -> str:
    old = (recorded.get("system", "") + "\n" + "\n".join(c for _, c in recorded.get("messages", []))).splitlines()
    new = (request.system + "\n" + "\n".join(c for _, c in request.messages)).splitlines()
    diff = [line for line in difflib.unified_diff(old, new, "recorded", "now", n=0, lineterm="")
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return "\n".join(diff[:6])[:1200] or "(the prompts are equal; the occurrence differs)"


class ReplayModel:
    """``replay:/path/transcripts.json``; keeps its own count of occurrences per request key."""

    def __init__(self, ref: ModelRef) -> None:
        self.spec = ref.spec
        self.path = ref.name
        self.by_key, self.by_context = _transcripts(self.path)
        self._seen: dict[str, int] = {}

    def complete(self, request: ChatRequest, settings: ChatSettings) -> ChatReply:
        key = request_key(request)
        occurrence = self._seen.get(key, 0)
        self._seen[key] = occurrence + 1
        rec = self.by_key.get((key, occurrence))
        if rec is None:
            raise ReplayDivergence(self._divergence(request, occurrence))
        if rec.get("error"):
            raise ReplayedFailure(f"replayed failure: {rec['error']}")
        return ChatReply(rec["response"], int(rec["tokens_in"]), int(rec["tokens_out"]), rec.get("model", ""),
                         truncated=bool(rec.get("truncated", False)))

    def _divergence(self, request: ChatRequest, occurrence: int) -> str:
        where = f"{request.level} call at {request.context or '(no context)'}"
        same = self.by_context.get(request.context, [])
        if not same:
            return (f"replay diverged: the run made a {where} that the recorded run never made "
                    "(the code or the inputs changed before this point)")
        return (f"replay diverged: the {where} (occurrence {occurrence}) differs from the recorded one; "
                f"first differences:\n{_first_difference(same[min(occurrence, len(same) - 1)], request)}")
