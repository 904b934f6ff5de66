"""Tabu list: steer candidates away from points that were tried recently.

``observe`` remembers the unit-cube coordinates (``spacekit.encode``) of the
last TABU_SIZE finished trials. ``review`` checks the candidate against them:
a candidate within the tabu radius of a remembered point (Euclidean distance
in the unit cube) is replaced by a jittered copy pushed away from that point,
out to the radius (the push doubles on each of at most MAX_MOVES attempts
until the decoded config is clear of every tabu point). It never rejects.

The radius is scale-free: ``RELATIVE_RADIUS`` times the candidate's distance
from the incumbent, clipped to [MIN_RADIUS, TABU_RADIUS]. A greedy search that
takes small steps near a good point is therefore not pushed into large ones,
and the incumbent itself only blocks exact repeats of the incumbent.

Tunables:
- TABU_SIZE: how many recent trials are tabu.
- TABU_RADIUS: the largest tabu radius (unit-cube distance).
- RELATIVE_RADIUS: the radius as a share of the candidate's step from the incumbent.
- MIN_RADIUS: the smallest radius (catches exact repeats).
- JITTER: relative size of the random part of the push.
- MAX_MOVES: pushes tried before the last one is taken as it is.
"""

import math
import random

import spacekit

TABU_SIZE = 20
TABU_RADIUS = 0.08
RELATIVE_RADIUS = 0.3
MIN_RADIUS = 0.002
JITTER = 0.25
MAX_MOVES = 6


def dist(a, b):
    return math.sqrt(sum([(x - y) ** 2 for x, y in zip(a, b)]))


def nearest(u, points, radius):
    """The closest tabu point within ``radius`` of ``u``, or None."""
    best = None
    best_d = radius
    for p in points:
        d = dist(u, p)
        if d < best_d:
            best = p
            best_d = d
    return best


def push(u, p, radius):
    """``u`` moved directly away from ``p`` to about ``radius`` from it, with jitter."""
    diff = [x - y for x, y in zip(u, p)]
    norm = dist(u, p)
    if norm < 1e-12:
        diff = [random.gauss(0.0, 1.0) for x in u]
        norm = math.sqrt(sum([x * x for x in diff])) or 1.0
    reach = radius * (1.0 + JITTER * random.random())
    out = []
    for x, y in zip(p, diff):
        v = x + y / norm * reach + random.gauss(0.0, JITTER * radius / 2.0)
        out.append(min(1.0, max(0.0, v)))
    return out


def observe(ctx, state, trial):
    points = state.get("points", [])
    points.append(spacekit.encode(ctx["space"], trial["config"]))
    state["points"] = points[-TABU_SIZE:]


def review(ctx, state, candidate):
    space = ctx["space"]
    points = state.get("points", [])
    if not points:
        return None
    u = spacekit.encode(space, candidate)
    radius = TABU_RADIUS
    incumbent = ctx["incumbent"]
    if incumbent is not None:
        step = dist(u, spacekit.encode(space, incumbent["config"]))
        radius = min(TABU_RADIUS, max(MIN_RADIUS, RELATIVE_RADIUS * step))
    p = nearest(u, points, radius)
    if p is None:
        return None
    moved = None
    for attempt in range(MAX_MOVES):
        moved = spacekit.decode(space, push(u, p, radius * 2 ** attempt))
        v = spacekit.encode(space, moved)
        if nearest(v, points, radius) is None:
            break
    if spacekit.key(space, moved) == spacekit.key(space, candidate):
        return None
    return moved
