"""What the judge compares: a stack of mechanisms plus the base proposer's search config."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from bilevel.inner.search_config import SearchConfig
from bilevel.mechanisms.contract import source_hash


@dataclass(frozen=True)
class Mechanism:
    """One mechanism: a content-addressed source with a human name."""

    name: str
    source: str

    @property
    def id(self) -> str:
        """The content address (first 16 hex digits of the source's sha256)."""
        return source_hash(self.source)[:16]


@dataclass(frozen=True)
class Stack:
    """An ordered stack of mechanisms and the Level 1.5 search config; the unit the judge keeps or reverts."""

    mechanisms: tuple[Mechanism, ...] = ()
    search: SearchConfig = field(default_factory=SearchConfig)

    @property
    def mechanism_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.mechanisms)

    @property
    def key(self) -> str:
        """A content hash of the stack: equal stacks share evaluations."""
        body = json.dumps({"m": list(self.mechanism_ids), "s": self.search.to_json()}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def sources(self) -> list[tuple[str, str]]:
        return [(m.id, m.source) for m in self.mechanisms]

    def describe(self) -> str:
        names = "+".join(m.name for m in self.mechanisms) or "(no mechanisms)"
        return f"{names} | {self.search.strategy.value} step={self.search.step_size:g}"

    def to_json(self) -> dict[str, Any]:
        return {"mechanisms": [{"id": m.id, "name": m.name} for m in self.mechanisms],
                "search": self.search.to_json()}
