"""Local quadratic surrogate (a separable quadratic fitted by least squares).

Once MIN_HISTORY trials have a score, ``propose`` offers a point on one trial
in EVERY: it takes the NEIGHBOURS scored trials nearest (in the unit cube) to
the incumbent, fits ``score ~ a + sum_j b_j dx_j + c_j dx_j^2`` around the
incumbent by ridge-regularised least squares (``numpy.linalg.lstsq``, scores
standardised, RIDGE on the curvature terms), and proposes the model's
minimiser inside a box around the incumbent: per coordinate, the vertex
``-b_j / (2 c_j)`` where the fitted curvature is positive, else the edge of
the box downhill. The box's half-width on each coordinate is RADIUS times the
spread of the neighbours on it (never below MIN_RADIUS), so the model is only
trusted where it has data. A small Gaussian jitter of JITTER keeps it from
proposing the same point twice. When the fit is degenerate, or its minimiser
is the incumbent itself, it proposes nothing.

Tunables:
- EVERY: propose on one trial in EVERY.
- MIN_HISTORY: scored trials needed before the first fit.
- NEIGHBOURS: how many scored trials near the incumbent the fit uses (at
  least 2 * dims + 2 are used when there are that many).
- RADIUS: the box's half-width, in neighbour spreads.
- MIN_RADIUS: the smallest half-width (unit-cube scale).
- RIDGE: the ridge penalty on the curvature terms.
- JITTER: the proposal's noise (unit-cube scale).
"""

import math
import random

import numpy as np
import spacekit

EVERY = 2
MIN_HISTORY = 8
NEIGHBOURS = 24
RADIUS = 1.0
MIN_RADIUS = 0.01
RIDGE = 1e-06
JITTER = 0.002


def neighbours(space, scored, centre):
    d = spacekit.dims(space)
    k = max(NEIGHBOURS, 2 * d + 2)
    points = [spacekit.encode(space, t["config"]) for t in scored]
    dist = [sum([(x - c) ** 2 for x, c in zip(p, centre)]) for p in points]
    order = sorted(range(len(points)), key=lambda i: (dist[i], i))[:k]
    return [points[i] for i in order], [float(scored[i]["score"]) for i in order]


def fit(points, scores, centre):
    d = len(centre)
    x = np.array(points) - np.array(centre)
    y = np.array(scores)
    spread = float(y.std())
    if not spread > 0:
        return None
    y = (y - y.mean()) / spread
    rows = [[1.0] + row.tolist() + (row * row).tolist() for row in x]
    targets = y.tolist()
    for j in range(d):
        penalty = [0.0] * (2 * d + 1)
        penalty[1 + d + j] = math.sqrt(RIDGE)
        rows.append(penalty)
        targets.append(0.0)
    coef = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)[0]
    if not bool(np.all(np.isfinite(coef))):
        return None
    return coef.tolist()


def minimiser(coef, widths):
    d = len(widths)
    step = []
    for j in range(d):
        b = coef[1 + j]
        c = coef[1 + d + j]
        w = widths[j]
        if c > 0:
            s = -b / (2.0 * c)
        elif b > 0:
            s = -w
        elif b < 0:
            s = w
        else:
            s = 0.0
        step.append(min(w, max(-w, s)))
    return step


def propose(ctx, state):
    if ctx["trial_index"] % EVERY != EVERY - 1 or ctx["incumbent"] is None:
        return None
    space = ctx["space"]
    scored = [t for t in ctx["history"] if t["score"] is not None]
    if len(scored) < MIN_HISTORY:
        return None
    centre = spacekit.encode(space, ctx["incumbent"]["config"])
    points, scores = neighbours(space, scored, centre)
    coef = fit(points, scores, centre)
    if coef is None:
        return None
    spread = np.array(points).std(axis=0).tolist()
    widths = [max(MIN_RADIUS, RADIUS * s) for s in spread]
    step = minimiser(coef, widths)
    if max([abs(s) for s in step]) < 1e-9:
        return None
    u = [min(1.0, max(0.0, c + s + random.gauss(0.0, JITTER))) for c, s in zip(centre, step)]
    return spacekit.decode(space, u)
