"""The scratch state of one inner-loop iteration while its candidate is selected (``inner.loop``), and
of the iterations the loop predicts (``inner.speculation``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bilevel.inner.counterfactual import Path
from bilevel.inner.records import HookEvent, Trial
from bilevel.inner.space import Config


@dataclass
class Iteration:
    """Scratch state of one iteration, while it is being built."""

    index: int
    events: list[HookEvent] = field(default_factory=list)
    guidance: dict[str, Any] = field(default_factory=dict)
    rejections: int = 0
    notes: list[str] = field(default_factory=list)
    path: Path = field(default_factory=Path)
    what_if: dict[tuple[int, str], Config | None] = field(default_factory=dict)  # base answers, memoised
    checked: bool = True  # the counterfactual check follows the selection (not in ask/tell)
    incumbent: Trial | None = None  # the incumbent the base proposer is given in this iteration
