"""Coordinate-wise step adaptation (Rosenbrock's rule, one coordinate at a time).

Every unit coordinate ``j`` has a signed step ``step[j]`` (starting at
STEP0). On SHARE of the trials (a seeded coin), ``propose`` offers the
incumbent with one coordinate moved by its step, taking the coordinates in
turn (coordinate ``t mod dims`` at trial ``t``). ``observe`` adapts the step
of the coordinate a trial moved, when the trial moved the incumbent on one
parameter only (so the outcome can be blamed on it; the coordinate moved the
most is charged): a kept trial multiplies that step by EXPAND (same
direction, longer), any other trial by ``-CONTRACT`` (the other direction,
shorter). A step that falls below MIN_STEP restarts at STEP0 in its current
direction; no step grows beyond MAX_STEP.

Tunables:
- SHARE: the share of trials it proposes on.
- STEP0: the initial step (unit-cube scale).
- EXPAND: the factor applied to a step after a success.
- CONTRACT: the factor (with a change of direction) after a failure.
- MIN_STEP, MAX_STEP: bounds on a step's length.
"""

import random

import spacekit

SHARE = 0.5
STEP0 = 0.1
EXPAND = 2.0
CONTRACT = 0.5
MIN_STEP = 0.002
MAX_STEP = 0.5


def moved(space, before, after):
    owner = spacekit.coord_owner(space)
    deltas = [b - a for a, b in zip(before, after)]
    changed = [j for j in range(len(deltas)) if abs(deltas[j]) > 1e-12]
    if not changed or len(set([owner[j] for j in changed])) != 1:
        return None
    j = max(changed, key=lambda i: (abs(deltas[i]), -i))
    return j, deltas[j]


def observe(ctx, state, trial):
    space = ctx["space"]
    d = spacekit.dims(space)
    steps = state.get("steps", [STEP0] * d)
    before = state.get("incumbent")
    after = spacekit.encode(space, trial["config"])
    if before is not None and trial["score"] is not None:
        found = moved(space, before, after)
        if found is not None:
            j = found[0]
            s = steps[j] * EXPAND if trial["kept"] else -steps[j] * CONTRACT
            if abs(s) < MIN_STEP:
                s = STEP0 if s > 0 else -STEP0
            steps[j] = max(-MAX_STEP, min(MAX_STEP, s))
    if trial["kept"]:
        state["incumbent"] = after
    state["steps"] = steps


def propose(ctx, state):
    if ctx["incumbent"] is None or random.random() >= SHARE:
        return None
    space = ctx["space"]
    d = spacekit.dims(space)
    steps = state.get("steps", [STEP0] * d)
    j = ctx["trial_index"] % d
    u = spacekit.encode(space, ctx["incumbent"]["config"])
    target = u[j] + steps[j]
    if target > 1.0 or target < 0.0:
        target = u[j] - steps[j]
    u[j] = min(1.0, max(0.0, target))
    return spacekit.decode(space, u)
