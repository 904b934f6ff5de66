"""Counterfactual activation: did a mechanism change what the inner loop evaluated?

A mechanism changes the search at an iteration only when the config that was
evaluated differs from the config the same stack *without that mechanism*
would have evaluated at that point: same history, same seeds, same state of
every other mechanism and of the base proposer. Returning guidance, a
proposal or a review is not enough: guidance the base strategy ignores, an
identity guide (``{"step_scale": 1.0}``), a 1e-12 nudge in a review, or a
proposal that another mechanism would have made anyway change nothing.

How it is computed, once per iteration, after the real candidate is chosen
and before it is evaluated (called by ``inner.loop``):

- the real iteration records a :class:`Path`: each mechanism's checked
  guidance, every propose/review answer keyed by its inputs, and the base
  proposer's proposals keyed by (attempt, guidance);
- for each active mechanism ``m`` the selection (guidance, propose chain,
  base proposer, review chain, rejections up to the bound) is run again
  without ``m`` by :func:`select`. An answer whose inputs equal a recorded
  one is reused (hooks are functions of their inputs and the history:
  ``mechanisms.contract``); otherwise the mechanism is called *dry* (the
  worker restores its state afterwards) and the base proposer answers with
  ``Proposer.what_if``, which commits nothing. Nothing of this reaches the
  real run: its proposals, states and random streams are those of a run
  without the check.
- ``m`` changed the trial when the two configs differ beyond
  :data:`TOLERANCE` on the unit cube for floats and simplex weights, or at
  all for integers and categoricals (:func:`differs`). Where the
  counterfactual cannot be known without committing (the base proposer
  would have to ask its sampler or call its model), the trial counts as
  changed when the answer would have had to come from there (see
  :func:`select`).

The judge counts, per mechanism, the share of trials it changed
(``Trial.changed_by``); every new mechanism of a candidate must reach
``min_changed_share`` on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bilevel.inner.space import (
    CategoricalParam,
    Config,
    FloatParam,
    IntParam,
    SimplexParam,
    Space,
    param_space,
)
from bilevel.mechanisms import spacekit
from bilevel.mechanisms.contract import merge_guidance
from bilevel.sandbox.plaincopy import canonical_json

TOLERANCE = 1e-6
"""Largest difference on a unit-cube coordinate (or a simplex weight) that is not a change."""

Answer = tuple[str, Any]
"""An interpreted propose/review result: ("skip", None) for a fault or an invalid value, ("none", None),
("config", config) or ("reject", reason)."""

SKIP: Answer = ("skip", None)
NONE: Answer = ("none", None)


canonical = canonical_json
"""A key for plain data (guidance, candidates): ``json.dumps(value, sort_keys=True, allow_nan=True)``."""


@dataclass
class Path:
    """What the real iteration asked and got; filled by the inner loop as it selects a candidate."""

    order: list[str] = field(default_factory=list)  # active mechanism ids in stack order
    hooks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)  # checked guidance per mechanism
    answers: dict[tuple[str, str, str, str], Answer] = field(default_factory=dict)
    base: dict[tuple[int, str], Config] = field(default_factory=dict)
    base_attempts: int = 0

    def answer(self, mid: str, hook: str, guidance: dict[str, Any], candidate: Any, ans: Answer) -> None:
        self.answers[(mid, hook, canonical(guidance), canonical(candidate))] = ans

    def based(self, guidance: dict[str, Any], config: Config) -> None:
        self.base[(self.base_attempts, canonical(guidance))] = config
        self.base_attempts += 1


class Pending(Exception):
    """A counterfactual selection needs a dry call that has not been made yet (raised by an oracle's
    ``call_dry`` where the inner loop gathers the calls to make in one exchange)."""

    def __init__(self, call: tuple[str, str, dict[str, Any], Any]) -> None:
        super().__init__(call[0])
        self.call = call


class Unknown(Exception):
    """The counterfactual needs an answer that cannot be had without committing something."""


CallDry = Callable[[str, str, dict[str, Any], Any], Answer]
WhatIf = Callable[[int, dict[str, Any]], Config | None]


@dataclass
class Oracle:
    """Answers for the run without one mechanism: recorded ones, else dry calls and ``what_if``."""

    path: Path
    call_dry: CallDry
    what_if: WhatIf
    dry_calls: int = 0

    def answer(self, mid: str, hook: str, guidance: dict[str, Any], candidate: Any) -> Answer:
        key = (mid, hook, canonical(guidance), canonical(candidate))
        found = self.path.answers.get(key)
        if found is None:
            self.dry_calls += 1
            found = self.call_dry(mid, hook, guidance, candidate)
            self.path.answers[key] = found
        return found

    def base(self, attempt: int, guidance: dict[str, Any]) -> Config:
        found = self.path.base.get((attempt, canonical(guidance)))
        if found is None:
            found = self.what_if(attempt, guidance)
            if found is None:
                raise Unknown("the base proposer cannot answer without committing")
        return found


def select(without: str, path: Path, oracle: Oracle, max_rejections: int) -> Config | None:
    """The candidate the iteration would have evaluated without mechanism ``without``; None if unknown.

    Mirrors ``InnerLoop._select``: merged guidance of the others, the first of the others' proposals,
    else the base proposer; the others' reviews in order; a rejection goes back to propose, and at the
    bound the last proposal runs.
    """
    others = [m for m in path.order if m != without]
    guidance = merge_guidance([path.parts[m] for m in others if m in path.parts])
    proposers = [m for m in others if "propose" in path.hooks.get(m, ())]
    reviewers = [m for m in others if "review" in path.hooks.get(m, ())]
    attempt = [0]

    def propose() -> Config:
        for mid in proposers:
            kind, value = oracle.answer(mid, "propose", guidance, None)
            if kind == "config":
                return dict(value)
        config = oracle.base(attempt[0], guidance)
        attempt[0] += 1
        return config

    try:
        candidate = propose()
        rejections = 0
        while True:
            reviewed, rejected = candidate, False
            for mid in reviewers:
                kind, value = oracle.answer(mid, "review", guidance, reviewed)
                if kind == "reject":
                    rejected = True
                    break
                if kind == "config":
                    reviewed = dict(value)
            if not rejected:
                return reviewed
            rejections += 1
            if rejections >= max_rejections:
                return candidate
            candidate = propose()
    except Unknown:
        return None


def pending_calls(path: Path, oracle: Oracle, max_rejections: int,
                  memo: dict[tuple[str, str], list[Any] | None] | None = None) -> list[list[Any]]:
    """The next dry call ``[mech, hook, guidance, candidate]`` each selection without one mechanism needs
    (its oracle raises :class:`Pending` for a call not made yet), each once, in stack order. Called by the
    inner loop to gather the dry calls of one exchange, and by its predictions (``inner.speculation``).

    ``memo`` (the inner loop's predictions, ``inner.speculation``, for paths that differ only in the
    mechanisms' guidance and the answers recorded for the merged guidance): the call a selection needs,
    by mechanism left out and the guidance of the others, where that guidance is not the merged one (then
    nothing recorded in the path can answer it, so the call depends on nothing else).
    """
    merged = canonical(merge_guidance([path.parts[m] for m in path.order if m in path.parts]))
    out: list[list[Any]] = []
    seen: set[tuple[str, str, str, str]] = set()
    for mid in path.order:
        key: tuple[str, str] | None = None
        if memo is not None:
            others = canonical(merge_guidance([path.parts[m] for m in path.order if m != mid and m in path.parts]))
            key = (mid, others) if others != merged else None
        if key is not None and memo is not None and key in memo:
            call = memo[key]
        else:
            call = None
            try:
                select(mid, path, oracle, max_rejections)
            except Pending as need:
                call = list(need.call)
            if key is not None and memo is not None:
                memo[key] = call
        if call is not None:
            m, hook, guidance, candidate = call
            k = (m, hook, canonical(guidance), canonical(candidate))
            if k not in seen:
                seen.add(k)
                out.append([m, hook, guidance, candidate])
    return out


def differs(space: Space, a: Config, b: Config, tol: float = TOLERANCE) -> bool:
    """Whether two configs differ: beyond ``tol`` in unit-cube coordinates for floats and simplex
    weights, at all for integers and categoricals (type included: ``True`` is not ``1``)."""
    for p in space.params:
        x, y = a.get(p.name), b.get(p.name)
        if isinstance(p, IntParam | CategoricalParam):
            if type(x) is not type(y) or x != y:
                return True
        elif isinstance(p, FloatParam):
            js = param_space(p)
            ux = spacekit.encode(js, {p.name: x})[0]
            uy = spacekit.encode(js, {p.name: y})[0]
            if not math.isclose(ux, uy, rel_tol=0.0, abs_tol=tol):
                return True
        elif isinstance(p, SimplexParam):
            if not isinstance(x, dict) or not isinstance(y, dict):
                return x != y
            if any(not math.isclose(float(x[d]), float(y[d]), rel_tol=0.0, abs_tol=tol) for d in p.domains):
                return True
    return False


def changed_by(space: Space, evaluated: Config, path: Path, oracle: Oracle, max_rejections: int) -> tuple[str, ...]:
    """The active mechanisms without which the iteration would have evaluated another config (or an
    unknown one), in stack order."""
    out = []
    for mid in path.order:
        alt = select(mid, path, oracle, max_rejections)
        if alt is None or differs(space, evaluated, alt):
            out.append(mid)
    return tuple(out)
