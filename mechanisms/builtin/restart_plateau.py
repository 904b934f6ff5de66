"""Restarts on plateau: a restart that really restarts the search (the restart-only control).

``observe`` counts the trials since the search centre last improved. The
centre is the incumbent until the first restart. Once PATIENCE trials in a
row have failed to improve it, ``propose`` offers one restart point:

- with probability ELITE_SHARE, a kick: one of the ELITE_SIZE best trials,
  perturbed widely (Gaussian noise of RESTART_SIGMA on every unit
  coordinate);
- otherwise, the most novel of N_CANDIDATES uniform random points: the one
  farthest (in the unit cube) from every trial so far.

The trial evaluated at a restart becomes the search centre, whether or not
it beats the incumbent (the best-so-far still scores the run); afterwards
the centre moves to any trial that beats it, and the count starts again.
While the centre is not the incumbent, ``guide`` returns it as
``{"centre": config}``, so the base proposer perturbs the restart basin's
best point instead of the incumbent (a base strategy that ignores
``centre``, such as random or TPE, is not restarted, and the judge's
counterfactual activation check sees that). It proposes nothing while the
search is improving.

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
    score = trial["score"]
    centre = state.get("centre")
    if since >= PATIENCE:
        # This trial is the restart point: the search centre moves there, better or not.
        state["since"] = 0
        state["restarts"] = state.get("restarts", 0) + 1
        if score is not None:
            state["centre"] = {"config": trial["config"], "score": score}
        return
    improved = trial["kept"] or (score is not None and centre is not None and score < centre["score"])
    if not improved:
        state["since"] = since + 1
        return
    state["since"] = 0
    if centre is not None:
        state["centre"] = {"config": trial["config"], "score": score}


def guide(ctx, state):
    centre = state.get("centre")
    incumbent = ctx["incumbent"]
    if centre is None or incumbent is None or centre["config"] == incumbent["config"]:
        return None
    return {"centre": centre["config"]}


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
