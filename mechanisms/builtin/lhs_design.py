"""Space-filling start: a Latin hypercube design over the unit cube.

For the first N trials, N = min(MAX_DESIGN, max(MIN_DESIGN, DESIGN_SHARE *
budget)) (never more than the budget), ``propose`` returns the next point of a
Latin hypercube: each of the N equal strata of every unit coordinate holds
exactly one design point. The design is built sequentially from the history,
so it survives a resumed run: for every coordinate it picks, with ``random``,
one of the strata that no earlier design-phase trial occupies (the least
occupied ones, when integer or categorical rounding has doubled some up) and
a random position inside it, away from the stratum's edges. The point is
decoded with ``spacekit``. After the design phase it returns None.

Tunables:
- DESIGN_SHARE: share of the budget spent on the design.
- MIN_DESIGN, MAX_DESIGN: bounds on the number of design points.
"""

import random

import spacekit

DESIGN_SHARE = 0.15
MIN_DESIGN = 4
MAX_DESIGN = 12


def design_size(budget):
    return min(budget, MAX_DESIGN, max(MIN_DESIGN, int(round(DESIGN_SHARE * budget))))


def propose(ctx, state):
    space = ctx["space"]
    n = design_size(ctx["budget"])
    if ctx["trial_index"] >= n:
        return None
    d = spacekit.dims(space)
    counts = [[0] * n for j in range(d)]
    for trial in ctx["history"]:
        if trial["index"] < n:
            u = spacekit.encode(space, trial["config"])
            for j in range(d):
                s = min(n - 1, int(u[j] * n))
                counts[j][s] = counts[j][s] + 1
    point = []
    for j in range(d):
        low = min(counts[j])
        free = [s for s in range(n) if counts[j][s] == low]
        s = random.choice(free)
        point.append((s + 0.05 + 0.9 * random.random()) / n)
    return spacekit.decode(space, point)
