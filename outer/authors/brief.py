"""What the LLM author is told about the run it writes for: fixed for the run, built once when it starts.

The driver (``runs.driver``) builds an :class:`AuthorBrief` from the run's spec and benchmark when it
builds the author; ``outer.authors.reference`` turns it, and the code of the engine, into the
reference part of the author prompt. Plain data only, so it is recorded and compared as JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bilevel.inner.loop import InnerSettings
from bilevel.inner.space import Space


@dataclass(frozen=True)
class AuthorBrief:
    """The run as the author sees it.

    - ``benchmark``: the benchmark's name; ``score_text``: what its primary score means.
    - ``space``: the JSON space (``mechanisms.spacekit``) of the first search-panel instance (whose first
      trials the prompt shows); ``dimensions``: the unit-coordinate counts of the benchmark's instances
      (a benchmark such as BBOB spans several dimensions: a mechanism sees each).
    - ``budget``: trials per inner run; ``max_rejections``: review rejections allowed per trial.
    - ``call_timeout_s`` / ``run_timeout_s`` / ``memory_bytes``: the sandbox limits per hook call and
      per inner run.
    - ``search``: the base proposer's search config (JSON); ``model_proposes``: whether the LLM is the
      base proposer of the inner loop (``[llm] inner = "model"``) or the numeric strategy is.
    - ``groups``: the instance groups of the search panel (BBOB functions, data-mix groups).
    - ``repairs``: how many repairs a failed answer gets.
    """

    benchmark: str
    score_text: str
    space: dict[str, Any]
    budget: int
    max_rejections: int
    call_timeout_s: float
    run_timeout_s: float
    memory_bytes: int
    search: dict[str, Any]
    model_proposes: bool
    groups: tuple[str, ...] = ()
    repairs: int = 2
    dimensions: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["groups"] = list(self.groups)
        d["dimensions"] = list(self.dimensions)
        return d


def make_brief(benchmark: str, score_text: str, space: Space, settings: InnerSettings, groups: Sequence[str],
               repairs: int, all_spaces: Sequence[Space] = ()) -> AuthorBrief:
    """The brief of a run (called by the driver when it builds the LLM author): ``space`` is the first
    search-panel instance's, ``all_spaces`` those of every instance of the benchmark."""
    return AuthorBrief(dimensions=tuple(sorted({s.dims for s in all_spaces} | {space.dims})),benchmark=benchmark, score_text=score_text, space=space.to_json(), budget=settings.budget,
                       max_rejections=settings.max_rejections, call_timeout_s=settings.limits.call_timeout_s,
                       run_timeout_s=settings.limits.run_timeout_s, memory_bytes=int(settings.limits.memory_bytes),
                       search=settings.search.to_json(), model_proposes=settings.model is not None,
                       groups=tuple(dict.fromkeys(groups)), repairs=repairs)
