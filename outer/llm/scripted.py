"""The scripted backend: deterministic answers, for tests and demos (no model).

``scripted:demo`` uses :data:`DEMO_SCRIPT`; ``scripted:/path/script.json``
reads a script ``{"author": [answer, ...]}``. :class:`ScriptedBrain` is the
answering logic; the loopback servers of the tests use it too, so a run
through the real SDKs gets the same answers as ``scripted:``.

- Author requests get ``author[(g * 7 + c + r) % len]`` where ``g`` and
  ``c`` are the generation and candidate the prompt asks for and ``r`` the
  number of earlier answers in the conversation (repairs). The brain reads
  only what a real model reads: the system prompt and the messages.
- Inner requests get a perturbation of the incumbent found in the prompt,
  chosen by a hash of the request: one or two parameters move, in bounds; now
  and then the answer is out of bounds (the proposer clips it) or not JSON at
  all (the proposer rejects it and asks again), as real models do. A batch
  request ("Proposals wanted: N") gets N such perturbations, each chosen by
  its own hash, as ``{"proposals": [...]}``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from bilevel.inner.chat import ChatConfigError, ChatReply, ChatRequest, ChatSettings, ModelRef

BROKEN_MECHANISM = '''"""Tabu list, first draft (uses a module the sandbox refuses)."""
import os

def review(ctx, state, candidate):
    return None
'''

TABU_MECHANISM = '''"""Tabu list written by the scripted model: push candidates away from recently tried points.

observe keeps the unit-cube coordinates of the last TABU_SIZE trials; review
moves a candidate that lies within RADIUS of one of them to RADIUS away from
it, in a seeded random direction.
"""
import math
import random

import spacekit

TABU_SIZE = 12
RADIUS = 0.04


def dist(a, b):
    return math.sqrt(sum([(x - y) ** 2 for x, y in zip(a, b)]))


def observe(ctx, state, trial):
    points = state.get("points", [])
    points.append(spacekit.encode(ctx["space"], trial["config"]))
    state["points"] = points[-TABU_SIZE:]


def review(ctx, state, candidate):
    points = state.get("points", [])
    if not points:
        return None
    u = spacekit.encode(ctx["space"], candidate)
    close = [p for p in points if dist(u, p) < RADIUS]
    if not close:
        return None
    p = close[0]
    d = [random.gauss(0.0, 1.0) for x in u]
    norm = math.sqrt(sum([x * x for x in d])) or 1.0
    moved = [min(1.0, max(0.0, a + b / norm * RADIUS)) for a, b in zip(p, d)]
    out = spacekit.decode(ctx["space"], moved)
    if spacekit.key(ctx["space"], out) == spacekit.key(ctx["space"], candidate):
        return None
    return out
'''

TIMID_MECHANISM = '''"""Small steps: always ask the base proposer for a step a quarter of its size."""


def guide(ctx, state):
    return {"step_scale": 0.25}
'''

DEMO_SCRIPT: dict[str, Any] = {"author": [BROKEN_MECHANISM, TABU_MECHANISM, TIMID_MECHANISM]}

_ASKED = re.compile(r"Write candidate (\d+) of generation (\d+)")
_WANTED = re.compile(r"^Proposals wanted: (\d+)$", re.MULTILINE)
AUTHOR_MARK = "mechanism author"


def _fenced(source: str, note: str) -> str:
    return f"{note}\n\n```python\n{source}```\n"


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _line_json(text: str, label: str) -> Any:
    for line in text.splitlines():
        if line.startswith(label):
            return json.loads(line[len(label):].strip())
    return None


class ScriptedBrain:
    """Answers a request deterministically (see the module doc)."""

    def __init__(self, script: dict[str, Any] | None = None) -> None:
        self.script = script or DEMO_SCRIPT
        if not self.script.get("author"):
            raise ChatConfigError('a script needs {"author": [answer, ...]} with at least one answer')

    def answer(self, system: str, messages: list[dict[str, str]]) -> str:
        """The answer to a conversation (the system prompt says whether the author or the proposer asks)."""
        if AUTHOR_MARK in system:
            return self._author(messages)
        return self._inner(messages)

    def _author(self, messages: list[dict[str, str]]) -> str:
        m = _ASKED.search(messages[0]["content"] if messages else "")
        c, g = (int(m.group(1)) - 1, int(m.group(2))) if m else (0, 0)
        r = sum(1 for msg in messages if msg["role"] == "assistant")
        answers = self.script["author"]
        source = answers[(g * 7 + c + r) % len(answers)]
        return _fenced(source, f"Here is mechanism draft {r + 1} for generation {g}, candidate {c}.")

    def _inner(self, messages: list[dict[str, str]]) -> str:
        first = messages[0]["content"] if messages else ""
        h = _hash(first + str(len(messages)))
        if len(messages) == 1 and h % 11 == 0:
            return "I think we should try something bolder this time."
        wanted = _WANTED.search(first)
        if wanted is None:
            return self._one_proposal(first, h)
        items = [json.loads(self._one_proposal(first, _hash(f"{first}{len(messages)}#{k}")))
                 for k in range(int(wanted.group(1)))]
        return json.dumps({"proposals": items})

    def _one_proposal(self, first: str, h: int) -> str:
        params = _line_json(first.replace("Search space:\n", "Search space: "), "Search space:")
        incumbent = _line_json(first, "Incumbent (best so far):")
        if not isinstance(params, list) or not isinstance(incumbent, dict):
            return '{"changes": {}, "hypothesis": "no incumbent to change"}'
        numeric = [p for p in params if p.get("type") in ("float", "int")]
        if not numeric:
            return '{"changes": {}, "hypothesis": "nothing numeric to move"}'
        changes: dict[str, Any] = {}
        for k in range(1 + h % 2):
            p = numeric[(h >> (8 * k)) % len(numeric)]
            low, high = float(p["low"]), float(p["high"])
            frac = ((h >> (16 + 8 * k)) % 1000) / 1000.0 - 0.5
            value = float(incumbent["config"][p["name"]]) + frac * 0.3 * (high - low)
            if h % 13 == 0:
                value = high + 1.0  # out of bounds: the proposer clips it
            changes[p["name"]] = round(value) if p["type"] == "int" else round(value, 6)
        return json.dumps({"changes": changes, "hypothesis": f"move {', '.join(changes)} by a bounded step"})


def load_script(name: str) -> dict[str, Any]:
    """The script a ``scripted:NAME`` spec names: ``demo`` or a JSON file."""
    if name == "demo":
        return DEMO_SCRIPT
    path = Path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ChatConfigError(f"scripted model {name!r}: cannot read the script: {exc}") from exc
    if not isinstance(data, dict):
        raise ChatConfigError(f"scripted model {name!r}: the script must be a JSON object")
    return data


def token_count(text: str) -> int:
    """A stand-in token count (words), so the ledger has numbers to add up."""
    return len(text.split())


class ScriptedModel:
    """``scripted:demo`` or ``scripted:/path/script.json``."""

    def __init__(self, ref: ModelRef) -> None:
        self.spec = ref.spec
        self.brain = ScriptedBrain(load_script(ref.name))

    def complete(self, request: ChatRequest, settings: ChatSettings) -> ChatReply:
        messages = request.messages_json()
        text = self.brain.answer(request.system, messages)
        tokens_in = token_count(request.system) + sum(token_count(m["content"]) for m in messages)
        if token_count(text) > settings.max_tokens:  # cut at the token limit, as a real server does, and say so
            cut = re.match(r"\s*(?:\S+\s+){" + str(settings.max_tokens) + "}", text)
            return ChatReply(text[: cut.end() if cut else len(text)], tokens_in, settings.max_tokens, self.spec,
                             truncated=True)
        return ChatReply(text, tokens_in, token_count(text), self.spec)
