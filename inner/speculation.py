"""The next trial's reviews, predicted, so that they go to the worker with the last trial's ``observe``.

A stack with a reviewer would take two exchanges with the sandbox worker per trial: the reviews see
the base proposer's candidate, which the host computes only once it knows the merged guidance of the
trial, which the worker computes (``sandbox.steps``). So the inner loop predicts the guidance: for
each guide of the stack, the distinct answers it gave in the last :data:`WINDOW` trials (most recent
first), combined into at most :data:`MAX_ALTERNATIVES` alternatives (the most recent combinations
first, or those that were the answer most often so far). For each it sends the base proposer's candidate (``Proposer.what_if``, which commits nothing)
and the dry calls the counterfactual check would make with the reviews. The worker runs the reviews
and dry calls of the alternative whose guidance equals the one it has just computed, exactly, and
only when no propose hook proposed (``sandbox.hooks.Worker.step_spec``); otherwise it runs none of
them (a misprediction, counted by ``SandboxSession.mispredictions``), and the loop makes its calls as
before. So every hook call the worker makes is one the loop makes next with the same inputs; the
loop's calls find the outcomes in the session's cache under their full inputs.

``InnerSettings.speculate`` switches it on; it is off by default, because each alternative costs the
host a ``what_if`` and the counterfactual's planning, about 0.1 ms, against about 0.05 ms for an
exchange on an idle 2-core machine (``bench/mechanism_overhead.py``: 1.23 round trips per trial with it,
2.01 without, and about 1.5x the time per trial with it): it pays only where exchanges are dear. Only a base proposer whose ``what_if`` for the next trial, asked before ``tell``, equals the
``propose`` that follows (``Proposer.speculative``: greedy and random) is predicted; for the others
nothing is sent. Called by the inner loop: :meth:`Speculation.seen` after each selection,
:meth:`Speculation.part` when it observes a trial and the next one follows.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Protocol

from bilevel.inner.counterfactual import NONE, Oracle, Path, canonical, pending_calls
from bilevel.inner.iteration import Iteration
from bilevel.inner.proposers import Proposer
from bilevel.inner.records import Trial
from bilevel.mechanisms.contract import merge_guidance
from bilevel.sandbox import SandboxSession


class _Settings(Protocol):
    @property
    def counterfactual(self) -> bool: ...
    @property
    def max_rejections(self) -> int: ...
    @property
    def speculate(self) -> bool: ...


class InnerLoop(Protocol):
    """What the prediction reads of the inner loop (``inner.loop.InnerLoop``)."""

    @property
    def session(self) -> SandboxSession | None: ...
    @property
    def proposer(self) -> Proposer: ...
    @property
    def incumbent(self) -> Trial | None: ...
    @property
    def settings(self) -> _Settings: ...
    def _active_with(self, hook: str) -> list[str]: ...
    def _oracle(self, it: Iteration, ready: Callable[[str, str, dict[str, Any], Any], bool]) -> Oracle: ...

WINDOW = 10
"""Trials whose guidance the prediction draws from."""

MAX_VALUES = 6
"""Distinct answers per guide kept for the prediction."""

MAX_ALTERNATIVES = 8
"""Predicted guidances sent per trial."""


class Speculation:
    """The recent guidance of each guide of one inner run, and the predictions made from it."""

    def __init__(self) -> None:
        self._recent: list[dict[str, dict[str, Any]]] = []
        self._hits: dict[str, list[int]] = {}  # per guide: how often its answer was the k-th most recent

    def seen(self, parts: dict[str, dict[str, Any]]) -> None:
        """Called after each selection with the checked guidance of each guide (``Path.parts``)."""
        for mid, part in parts.items():
            recent = [canonical(v) for v in self._distinct(mid)]
            if canonical(part) in recent:
                self._hits.setdefault(mid, [0] * MAX_VALUES)[recent.index(canonical(part))] += 1
        self._recent = [*self._recent[-(WINDOW - 1):], dict(parts)]

    def _distinct(self, mid: str) -> list[dict[str, Any]]:
        """The distinct recent answers of guide ``mid``, most recent first."""
        values: dict[str, dict[str, Any]] = {}
        for parts in reversed(self._recent):
            if mid in parts and len(values) < MAX_VALUES:
                values.setdefault(canonical(parts[mid]), parts[mid])
        return list(values.values())

    def _options(self, guides: list[str]) -> list[list[dict[str, Any]]] | None:
        """Per guide, its distinct recent answers, the likeliest first (by how often the answer was
        the k-th most recent so far, then the most recent); None where one has none."""
        options = []
        for mid in guides:
            values = self._distinct(mid)
            if not values:
                return None
            hits = self._hits.get(mid, [0] * MAX_VALUES)
            order = sorted(range(len(values)), key=lambda k: (-hits[k], k))
            options.append([values[k] for k in order])
        return options

    def part(self, loop: InnerLoop, draft: Trial, t: int) -> list[Any] | None:
        """The ``["spec", t, reviewers, alternatives]`` part for trial ``t`` (see the module doc), or None.

        Called when the loop observes ``draft`` (trial ``t - 1``), before the proposer is told of it."""
        session = loop.session
        reviewers = loop._active_with("review")
        if session is None or not reviewers or not loop.proposer.speculative or not loop.settings.speculate:
            return None
        guides = loop._active_with("guide")
        options = self._options(guides)
        if options is None:
            return None
        incumbent = draft if draft.kept else loop.incumbent
        memo: dict[tuple[int, str], Any] = {}  # the base proposer's answers, shared by the alternatives
        pending: dict[tuple[str, str], list[Any] | None] = {}  # dry calls too (counterfactual.pending_calls)
        alternatives = []
        for ranks in _best_first([len(o) for o in options], MAX_ALTERNATIVES):
            parts = {mid: options[i][r] for i, (mid, r) in enumerate(zip(guides, ranks, strict=True))}
            if any("centre" in g for g in parts.values()):
                continue  # the worker stops at a centre: the host checks it first
            alt = _alternative(loop, t, incumbent, parts, reviewers, memo, pending)
            if alt is None:
                return None
            alternatives.append(alt)
        return ["spec", t, reviewers, alternatives] if alternatives else None


def _alternative(loop: InnerLoop, t: int, incumbent: Trial | None, parts: dict[str, dict[str, Any]],
                 reviewers: list[str], memo: dict[tuple[int, str], Any],
                 pending: dict[tuple[str, str], list[Any] | None]) -> list[Any] | None:
    """``[parts, candidate, dry calls]`` of one predicted guidance: what the loop's selection then asks."""
    session = loop.session
    assert session is not None
    guidance = merge_guidance(list(parts.values()))
    key = (0, canonical(guidance))
    if key not in memo:
        memo[key] = loop.proposer.what_if(t, incumbent, guidance, 0)
    candidate = memo[key]
    if candidate is None:
        return None
    order = list(session.active)
    it = Iteration(index=t, guidance=guidance, incumbent=incumbent, what_if=memo,
                    path=Path(order=order, hooks={m: tuple(session.hooks(m)) for m in order}, parts=dict(parts)))
    for mid in loop._active_with("propose"):
        it.path.answer(mid, "propose", guidance, None, NONE)
    it.path.based(guidance, candidate)
    dry: list[list[Any]] = []
    if loop.settings.counterfactual and order:  # as the loop's _first_dry: nothing is ahead for trial t yet
        real = {(m, "review", canonical(guidance), canonical(candidate)) for m in reviewers}
        dry = [k for k in pending_calls(it.path, loop._oracle(it, lambda *_: False), loop.settings.max_rejections,
                                        pending)
               if (k[0], k[1], canonical(k[2]), canonical(k[3])) not in real]
    return [[[mid, g] for mid, g in parts.items()], candidate, dry]


def _best_first(sizes: list[int], limit: int) -> list[tuple[int, ...]]:
    """Up to ``limit`` rank tuples (one rank per guide, within ``sizes``), lowest rank sum first."""
    start = tuple(0 for _ in sizes)
    heap = [(0, start)]
    seen = {start}
    out: list[tuple[int, ...]] = []
    while heap and len(out) < limit:
        _, ranks = heapq.heappop(heap)
        out.append(ranks)
        for i in range(len(ranks)):
            if ranks[i] + 1 < sizes[i]:
                nxt = ranks[:i] + (ranks[i] + 1,) + ranks[i + 1:]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (sum(nxt), nxt))
    return out
