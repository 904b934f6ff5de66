"""Restarts on plateau.

``observe`` counts the trials since the incumbent last improved (a trial was
kept). Once PATIENCE trials in a row have failed to improve it, ``propose``
offers one restart point, and the count starts again after that trial:

- with probability ELITE_SHARE, a kick: one of the ELITE_SIZE best trials,
  perturbed widely (Gaussian noise of RESTART_SIGMA on every unit
  coordinate);
- otherwise, the most novel of N_CANDIDATES uniform random points: the one
  farthest (in the unit cube) from every trial so far.

It proposes nothing while the search is improving.

Tunables:
- PATIENCE: failed trials in a row before a restart.
- ELITE_SHARE: probability of a kick from an elite rather than a novel point.
- ELITE_SIZE: how many of the best trials a kick may start from.
- RESTART_SIGMA: the kick's noise (unit-cube scale).
- N_CANDIDATES: random points compared for novelty.
"""

import math
import random

import spacekit

PATIENCE = 10
ELITE_SHARE = 0.8
ELITE_SIZE = 2
RESTART_SIGMA = 0.12
N_CANDIDATES = 16


def observe(ctx, state, trial):
    since = state.get("since", 0)
    if since >= PATIENCE or trial["kept"]:
        state["since"] = 0
    else:
        state["since"] = since + 1
    if since >= PATIENCE:
        state["restarts"] = state.get("restarts", 0) + 1


def min_dist(u, points):
    best = math.inf
    for p in points:
        d = math.sqrt(sum([(x - y) ** 2 for x, y in zip(u, p)]))
        best = min(best, d)
    return best


def kick(space, elites):
    u = spacekit.encode(space, random.choice(elites)["config"])
    return [min(1.0, max(0.0, x + random.gauss(0.0, RESTART_SIGMA))) for x in u]


def novel(space, history):
    seen = [spacekit.encode(space, t["config"]) for t in history]
    d = spacekit.dims(space)
    best = None
    best_d = -1.0
    for c in range(N_CANDIDATES):
        u = [random.random() for j in range(d)]
        m = min_dist(u, seen)
        if m > best_d:
            best = u
            best_d = m
    return best


def propose(ctx, state):
    if state.get("since", 0) < PATIENCE:
        return None
    space = ctx["space"]
    history = ctx["history"]
    scored = [t for t in history if t["score"] is not None]
    elites = sorted(scored, key=lambda t: t["score"])[:ELITE_SIZE]
    if elites and random.random() < ELITE_SHARE:
        return spacekit.decode(space, kick(space, elites))
    return spacekit.decode(space, novel(space, history))
