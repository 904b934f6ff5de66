"""The author contract: given what the outer loop knows, write candidate stacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.errors import OuterError
from bilevel.outer.traces import TraceReport


class UnknownAuthor(OuterError):
    """No author has that name."""


@dataclass(frozen=True)
class Candidate:
    """A candidate stack with how it was made. ``new`` are the mechanisms it introduces (to be conformance-checked)."""

    stack: Stack
    operation: str
    author: str
    new: tuple[Mechanism, ...] = ()
    parents: tuple[str, ...] = ()  # mechanism ids a new mechanism was derived from
    operator: str = ""  # the operator that made it (offline author: add, pair, mutate, graft, cross, ...)
    behaviour: str = ""  # the offline author's behavioural fingerprint on its probe problems (outer.probe)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stack": self.stack.to_json(), "operation": self.operation, "author": self.author,
                               "new": [m.id for m in self.new], "parents": list(self.parents)}
        if self.operator:
            out["operator"] = self.operator
        if self.behaviour:
            out["behaviour"] = self.behaviour
        return out


@dataclass(frozen=True)
class AuthorContext:
    """Everything an author may read; called once per generation."""

    generation: int
    seed: int
    incumbent: Stack
    library: tuple[Mechanism, ...]
    analysis: TraceReport
    tried: frozenset[str]  # stack keys already judged in this run
    lineage: tuple[dict[str, Any], ...] = ()  # judged candidates, oldest first (``OuterLoop`` documents the keys)
    start: int = 0  # candidates of this generation already written and judged (sequential candidates)


class Author(Protocol):
    """Writes candidates. ``propose`` is called once per generation, before any candidate of it is judged."""

    name: str

    def propose(self, ctx: AuthorContext, n: int) -> list[Candidate]: ...
