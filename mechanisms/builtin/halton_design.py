"""Low-discrepancy start: a shifted Halton sequence over the unit cube.

The design has N points, N = min(MAX_DESIGN, max(MIN_DESIGN, DESIGN_SHARE *
budget)) (never more than the budget minus one). The first trial is left to
the base proposer (the run's start point); on trials ``t = 1..N``,
``propose`` returns point ``t - 1 + SKIP`` of the Halton sequence (coordinate
``j`` is the radical inverse of the index in the ``j``-th prime base),
shifted modulo 1 by a random vector (a Cranley-Patterson rotation, which
keeps the low discrepancy but makes the design differ from seed to seed) and
decoded with ``spacekit``. The shift is drawn by ``observe`` at the first
trial and kept in the state, so every design point has the same shift and a
resumed run rebuilds it. After the design phase it returns None.

Tunables:
- DESIGN_SHARE: share of the budget spent on the design.
- MIN_DESIGN, MAX_DESIGN: bounds on the number of design points.
- SKIP: how many leading points of the sequence to skip (point 0 is a corner).
"""

import random

import spacekit

DESIGN_SHARE = 0.15
MIN_DESIGN = 4
MAX_DESIGN = 12
SKIP = 1


def primes(n):
    out = []
    k = 2
    while len(out) < n:
        if all([k % p != 0 for p in out]):
            out.append(k)
        k = k + 1
    return out


def radical_inverse(index, base):
    value = 0.0
    scale = 1.0 / base
    while index > 0:
        value = value + (index % base) * scale
        index = index // base
        scale = scale / base
    return value


def design_size(budget):
    return min(budget - 1, MAX_DESIGN, max(MIN_DESIGN, int(round(DESIGN_SHARE * budget))))


def observe(ctx, state, trial):
    if "shift" not in state:
        state["shift"] = [random.random() for j in range(spacekit.dims(ctx["space"]))]


def propose(ctx, state):
    space = ctx["space"]
    t = ctx["trial_index"]
    if t < 1 or t > design_size(ctx["budget"]) or "shift" not in state:
        return None
    d = spacekit.dims(space)
    shift = state["shift"]
    bases = primes(d)
    point = [(radical_inverse(t - 1 + SKIP, bases[j]) + shift[j]) % 1.0 for j in range(d)]
    return spacekit.decode(space, point)
