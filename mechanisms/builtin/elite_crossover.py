"""Elite crossover.

Every EVERY-th trial, once at least MIN_HISTORY trials have a score,
``propose`` breeds a child from two distinct trials among the ELITE_SIZE
best (the best one and a random other when BEST_AS_PARENT, else two at
random): a uniform crossover in the unit cube where every parameter
is taken whole from one parent (the coordinates of a simplex block travel
together, grouped with ``spacekit.coord_owner``), with both parents
contributing when there are two or more parameters (with a single parameter,
a random blend of the two), then a small Gaussian mutation of MUTATION_SIGMA
on every coordinate. Parents closer than MIN_DISTANCE (unit cube) are not
crossed: their child would be little more than the mutation. On the other
trials it proposes nothing.

Tunables:
- EVERY: propose on one trial in EVERY.
- ELITE_SIZE: how many of the best trials may be parents.
- MIN_HISTORY: scored trials needed before the first child.
- MUTATION_SIGMA: the mutation's noise (unit-cube scale).
- BEST_AS_PARENT: whether the best trial is always one of the parents.
- MIN_DISTANCE: the smallest parent distance worth a crossover.
"""

import random

import spacekit

EVERY = 5
ELITE_SIZE = 4
MIN_HISTORY = 6
MUTATION_SIGMA = 0.02
BEST_AS_PARENT = True
MIN_DISTANCE = 0.02


def parents(space, history):
    scored = sorted([t for t in history if t["score"] is not None], key=lambda t: t["score"])
    elites = []
    keys = []
    for t in scored:
        k = spacekit.key(space, t["config"])
        if k not in keys:
            elites.append(t)
            keys.append(k)
        if len(elites) >= ELITE_SIZE:
            break
    return elites


def cross(space, a, b):
    names = spacekit.names(space)
    owner = spacekit.coord_owner(space)
    if len(names) == 1:
        w = random.random()
        return [x + w * (y - x) for x, y in zip(a, b)]
    pick = {n: random.random() < 0.5 for n in names}
    from_a = len([n for n in names if pick[n]])
    if from_a == 0 or from_a == len(names):
        n = random.choice(names)
        pick[n] = not pick[n]
    return [x if pick[o] else y for x, y, o in zip(a, b, owner)]


def propose(ctx, state):
    if ctx["trial_index"] % EVERY != EVERY - 1:
        return None
    space = ctx["space"]
    scored = [t for t in ctx["history"] if t["score"] is not None]
    if len(scored) < MIN_HISTORY:
        return None
    elites = parents(space, ctx["history"])
    if len(elites) < 2:
        return None
    if BEST_AS_PARENT:
        pair = [elites[0], random.choice(elites[1:])]
    else:
        pair = random.sample(elites, 2)
    if spacekit.distance(space, pair[0]["config"], pair[1]["config"]) < MIN_DISTANCE:
        return None
    a = spacekit.encode(space, pair[0]["config"])
    b = spacekit.encode(space, pair[1]["config"])
    child = cross(space, a, b)
    child = [min(1.0, max(0.0, x + random.gauss(0.0, MUTATION_SIGMA))) for x in child]
    return spacekit.decode(space, child)
