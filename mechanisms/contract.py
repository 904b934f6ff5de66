"""The mechanism contract: what a search mechanism is, and when each hook is called.

A mechanism is Python source in the restricted dialect (see ``sandbox.policy``).
It is never imported by the host: the sandbox worker compiles it with
RestrictedPython and executes it once per inner run into fresh globals. It
may ``import`` only ``math``, ``random`` (a seeded instance), ``statistics``,
``itertools``, ``functools``, ``collections``, ``numpy`` (a facade of
allow-listed functions) and ``spacekit`` (``mechanisms.spacekit``).

A mechanism defines any non-empty subset of four hooks, as module-level
functions. ``state`` is a dict owned by the mechanism, kept in the worker for
one inner run (it starts empty); mechanisms keep everything they learn there
or in their own module globals.

Call order, per inner-loop iteration ``t`` (0-based), for a stack ``[m1..mk]``:

1. ``guide(ctx, state)`` on every mechanism, in stack order. It returns
   ``None`` or a guidance dict (see :data:`GUIDANCE_KEYS`). The host merges
   guidance (``focus`` and ``freeze`` are united, ``step_scale`` multiplied,
   ``centre`` taken from the first mechanism in stack order that gives one)
   and shows the merged guidance to the base proposer and, as
   ``ctx["guidance"]``, to ``propose`` and ``review``.
2. ``propose(ctx, state)`` on each mechanism in stack order until one returns
   a config (a dict with a value for every parameter). ``None`` means "no
   proposal"; the base proposer is asked when nobody proposes. A proposal that
   is not a valid config is a contract violation and the next mechanism is
   asked.
3. ``review(ctx, state, candidate)`` on every mechanism, in stack order, each
   seeing the previous one's output. It returns ``None`` (accept unchanged),
   a config (the candidate replaced; it must be valid), or a string (reject,
   the string being the reason). A rejected iteration goes back to step 2; the
   host bounds rejections per iteration (``max_rejections``) and then runs
   the last candidate anyway, recording that the bound was hit.
4. The host checks the candidate against the space and evaluates it.
5. ``observe(ctx, state, trial)`` on every mechanism, in stack order, with the
   finished trial. Its return value is ignored.

``ctx`` is built in the worker for each call and holds plain data only:

- ``space``: the JSON space (``mechanisms.spacekit``).
- ``history``: the finished trials so far, oldest first (each a trial dict).
- ``incumbent``: the best kept trial so far, or ``None``.
- ``trial_index``: ``t``; ``budget``: the number of trials in this inner run.
- ``guidance``: the merged guidance of step 1 (``{}`` in ``guide`` itself).

A trial dict is ``{"index": int, "config": config, "score": float | None,
"kept": bool, "source": str}``. Scores are minimised; ``None`` means the
evaluation failed.

Randomness: ``random`` inside a mechanism is re-seeded before every call from
the inner run's seed, the mechanism's position, the hook and ``t``. A
mechanism's behaviour is therefore a function of the history alone: a resumed
inner run rebuilds every mechanism's state by replaying the history through
``observe`` and then makes the same proposals as an uninterrupted run.

Module-level constants written in UPPER_CASE are a mechanism's tunables: the
offline author mutates them.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any


class Hook(StrEnum):
    """The hooks a mechanism may define, in the order the inner loop calls them."""

    GUIDE = "guide"
    PROPOSE = "propose"
    REVIEW = "review"
    OBSERVE = "observe"


HOOK_NAMES: tuple[str, ...] = tuple(h.value for h in Hook)

GUIDANCE_KEYS: dict[str, str] = {
    "focus": "list of parameter names the base proposer should prefer to change",
    "freeze": "list of parameter names the base proposer must not change",
    "step_scale": "positive number multiplying the base proposer's step size",
    "centre": "a config the base proposer perturbs instead of the incumbent (a restart); the host checks it "
              "against the space",
}


class ContractError(ValueError):
    """A value returned by a mechanism breaks the contract; the message says how."""


def source_hash(source: str) -> str:
    """The content address of a mechanism source (sha256 of its UTF-8 text)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def check_guidance(value: Any, param_names: list[str]) -> dict[str, Any]:
    """Validate a ``guide`` result; return it in canonical form or raise ContractError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ContractError(f"guide must return None or a dict, got {type(value).__name__}")
    unknown = set(value) - set(GUIDANCE_KEYS)
    if unknown:
        raise ContractError(f"guide returned unknown keys {sorted(unknown)}; allowed: {sorted(GUIDANCE_KEYS)}")
    out: dict[str, Any] = {}
    for k in ("focus", "freeze"):
        if k in value:
            names = value[k]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ContractError(f"guidance {k!r} must be a list of parameter names")
            bad = [n for n in names if n not in param_names]
            if bad:
                raise ContractError(f"guidance {k!r} names unknown parameters {bad}")
            out[k] = sorted(set(names))
    if "step_scale" in value:
        s = value["step_scale"]
        if isinstance(s, bool) or not isinstance(s, int | float) or not (0.0 < float(s) <= 100.0):
            raise ContractError(f"guidance 'step_scale' must be a number in (0, 100], got {s!r}")
        out["step_scale"] = float(s)
    if "centre" in value:
        c = value["centre"]
        if not isinstance(c, dict) or sorted(c) != sorted(param_names):
            raise ContractError("guidance 'centre' must be a config: a dict with a value for every parameter "
                                f"{sorted(param_names)}")
        out["centre"] = c
    return out


def merge_guidance(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge canonical guidance dicts: focus and freeze united, step_scale multiplied, the first centre."""
    focus: set[str] = set()
    freeze: set[str] = set()
    scale = 1.0
    centre: dict[str, Any] | None = None
    for g in parts:
        if centre is None and "centre" in g:
            centre = g["centre"]
        focus.update(g.get("focus", []))
        freeze.update(g.get("freeze", []))
        scale *= float(g.get("step_scale", 1.0))
    out: dict[str, Any] = {}
    if focus:
        out["focus"] = sorted(focus - freeze)
    if freeze:
        out["freeze"] = sorted(freeze)
    if scale != 1.0:
        out["step_scale"] = min(100.0, max(1e-3, scale))
    if centre is not None:
        out["centre"] = centre
    return out
