"""Covariance-adapting perturbation: a (1+1)-CMA-ES with a rank-one update.

On SHARE of the trials (a seeded coin), ``propose`` offers the incumbent
plus ``sigma * A z`` on the unit coordinates, where ``z`` is standard normal
and ``A`` the Cholesky factor of the covariance ``C`` (clipped to the cube).
``observe`` learns from every kept trial, whoever proposed it: its step from
the previous incumbent, ``y = (x - incumbent) / sigma``, enters the
evolution path ``p = (1 - cc) p + sqrt(cc (2 - cc)) y`` and the covariance
``C = (1 - ccov) C + ccov p p^T`` (the rank-one update), so ``C`` stretches
along the directions that paid. The step size follows the 1/5th success rule
(a kept trial multiplies ``sigma`` by ``exp(0.8 / DAMPING)``, any other trial
by ``exp(-0.2 / DAMPING)``), within [MIN_SIGMA, MAX_SIGMA]; when it
collapses below MIN_SIGMA, ``sigma``, ``C`` and ``p`` restart.
``cc = CC_SCALE * 2 / (n + 2)`` and ``ccov = CCOV_SCALE * 2 / (n^2 + 6)`` for
``n`` unit coordinates (Igel, Suttorp and Hansen's defaults at scale 1).

Tunables:
- SHARE: the share of trials it proposes on.
- SIGMA0: the initial step size (unit-cube scale).
- DAMPING: how slowly the step size adapts.
- CC_SCALE, CCOV_SCALE: multipliers of the path and covariance learning rates.
- MIN_SIGMA, MAX_SIGMA: bounds on the step size.
- MAX_STEP_NORM: the longest step (in sigmas) the update takes into account.
"""

import math
import random

import numpy as np
import spacekit

SHARE = 1.0
SIGMA0 = 0.15
DAMPING = 1.0
CC_SCALE = 1.0
CCOV_SCALE = 1.0
MIN_SIGMA = 0.001
MAX_SIGMA = 0.5
MAX_STEP_NORM = 10.0


def fresh(d):
    return {"sigma": SIGMA0, "C": [[1.0 if i == j else 0.0 for j in range(d)] for i in range(d)],
            "p": [0.0] * d}


def learn(model, y, d):
    cc = min(1.0, CC_SCALE * 2.0 / (d + 2.0))
    ccov = min(1.0, CCOV_SCALE * 2.0 / (d * d + 6.0))
    norm = math.sqrt(sum([v * v for v in y]))
    if norm > MAX_STEP_NORM:
        y = [v * MAX_STEP_NORM / norm for v in y]
    p = [(1.0 - cc) * a + math.sqrt(cc * (2.0 - cc)) * b for a, b in zip(model["p"], y)]
    c = np.array(model["C"]) * (1.0 - ccov) + ccov * np.array([[a * b for b in p] for a in p])
    model["p"] = p
    model["C"] = c.tolist()


def observe(ctx, state, trial):
    space = ctx["space"]
    d = spacekit.dims(space)
    model = state.get("model") or fresh(d)
    u = spacekit.encode(space, trial["config"])
    before = state.get("incumbent")
    if trial["kept"]:
        if before is not None:
            learn(model, [(a - b) / model["sigma"] for a, b in zip(u, before)], d)
        model["sigma"] = min(MAX_SIGMA, model["sigma"] * math.exp(0.8 / DAMPING))
        state["incumbent"] = u
    else:
        model["sigma"] = model["sigma"] * math.exp(-0.2 / DAMPING)
    if model["sigma"] < MIN_SIGMA:
        model = fresh(d)
    state["model"] = model


def factor(cov, d):
    try:
        return np.linalg.cholesky(np.array(cov))
    except np.linalg.LinAlgError:
        return np.array([[1.0 if i == j else 0.0 for j in range(d)] for i in range(d)])


def propose(ctx, state):
    if ctx["incumbent"] is None or random.random() >= SHARE:
        return None
    space = ctx["space"]
    d = spacekit.dims(space)
    model = state.get("model") or fresh(d)
    z = np.array([random.gauss(0.0, 1.0) for j in range(d)])
    y = factor(model["C"], d).dot(z).tolist()
    u = spacekit.encode(space, ctx["incumbent"]["config"])
    return spacekit.decode(space, [min(1.0, max(0.0, a + model["sigma"] * b)) for a, b in zip(u, y)])
