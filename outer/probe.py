"""Behaviour of a candidate stack on fixed probe problems: what makes two candidates "the same".

Two sources can differ in text and still search identically (a mutated
constant on a branch never taken, a guard that never holds). The offline
author calls :func:`probe` on each candidate stack it makes: the stack
runs, through the sandbox exactly as in a real inner run, on two small fixed
probe problems (a multimodal bowl over four floats, and a mixed space with a
log-scale float, an int, a categorical and a data-mix simplex) with fixed
seeds, and the fingerprint is a hash of every config it evaluated. Equal
fingerprints mean identical proposals on the probe histories: one candidate.
A stack whose hooks fault on a probe has no fingerprint (None).

:func:`probe` also says which mechanisms changed no trial on any probe run
(counterfactually, ``Trial.changed_by``, as the judge counts): such a
mechanism would be rejected by the judge's activity check, so the author
tries another place for it on the stack, or drops the candidate.

May import ``inner`` and ``judge`` (the stack type) only.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.space import Space
from bilevel.judge.stack import Stack

PROBE_BUDGET = 30
PROBE_SEEDS = (0, 1)

BOWL = {"params": [{"name": f"x{i}", "type": "float", "low": -5.0, "high": 5.0, "log": False} for i in range(4)]}
MIXED = {"params": [
    {"name": "lr", "type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    {"name": "layers", "type": "int", "low": 1, "high": 8, "log": False},
    {"name": "act", "type": "categorical", "choices": ["relu", "gelu", "tanh"]},
    {"name": "mix", "type": "simplex", "domains": ["web", "code", "books"]},
    {"name": "dropout", "type": "float", "low": 0.0, "high": 0.5, "log": False},
]}


@dataclass(frozen=True)
class ProbeObjective:
    """A fixed, deterministic, mildly multimodal function of a config's unit coordinates."""

    space_json: dict[str, Any]

    @property
    def space(self) -> Space:
        return Space.from_json(self.space_json)

    def evaluate(self, config: dict[str, Any]) -> float:
        from bilevel.mechanisms import spacekit

        u = spacekit.encode(self.space_json, config)
        return math.fsum((x - 0.3 - 0.1 * j) ** 2 + 0.05 * math.sin(17.0 * x + j) for j, x in enumerate(u))


@dataclass(frozen=True)
class ProbeResult:
    """What the probes saw of one stack: its ``fingerprint`` and the ids of its mechanisms that changed
    no trial on any probe run (``inert``)."""

    fingerprint: str
    inert: tuple[str, ...]


def _trials(stack: Stack, space: dict[str, Any], seed: int) -> list[Any] | None:
    settings = InnerSettings(budget=PROBE_BUDGET, search=stack.search)
    result = run_inner(ProbeObjective(space), stack.sources(), settings, seed)
    if any(e.status != "ok" for t in result.trials for e in t.hooks):
        return None
    return list(result.trials)


def probe(stack: Stack) -> ProbeResult | None:
    """Run ``stack`` on the probe problems: its fingerprint and inert mechanisms, or None if a hook
    faulted there. Called by the offline author once per candidate stack it makes."""
    runs: list[list[Any]] = []
    active: set[str] = set()
    for space in (BOWL, MIXED):
        for seed in PROBE_SEEDS:
            trials = _trials(stack, space, seed)
            if trials is None:
                return None
            runs.append([t.config for t in trials])
            active.update(m for t in trials for m in t.changed_by)
    text = json.dumps(runs, sort_keys=True, default=repr)
    inert = tuple(m.id for m in stack.mechanisms if m.id not in active)
    return ProbeResult(hashlib.sha256(text.encode()).hexdigest()[:16], inert)

