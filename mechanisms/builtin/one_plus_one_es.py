"""(1+1) evolution strategy with the 1/5th success rule.

On SHARE of the trials (a seeded coin), ``propose`` offers the incumbent
plus isotropic Gaussian noise of step size ``sigma`` on every unit
coordinate (clipped to the cube). ``observe`` adapts ``sigma`` by the
1/5th success rule: a kept trial multiplies it by ``exp(4 / (5 * DAMPING))``
and any other trial by ``exp(-1 / (5 * DAMPING))``, so it stays put when one
trial in five succeeds, grows when more do and shrinks when fewer do. It
starts at SIGMA0 and stays within [MIN_SIGMA, MAX_SIGMA]; when it would fall
below MIN_SIGMA the search has converged and it restarts at SIGMA0.

Tunables:
- SHARE: the share of trials it proposes on.
- SIGMA0: the initial step size (unit-cube scale).
- DAMPING: how slowly the step size adapts (larger: slower).
- MIN_SIGMA, MAX_SIGMA: bounds on the step size.
"""

import math
import random

import spacekit

SHARE = 1.0
SIGMA0 = 0.15
DAMPING = 1.0
MIN_SIGMA = 0.001
MAX_SIGMA = 0.5


def observe(ctx, state, trial):
    sigma = state.get("sigma", SIGMA0)
    if trial["kept"]:
        sigma = sigma * math.exp(0.8 / DAMPING)
    else:
        sigma = sigma * math.exp(-0.2 / DAMPING)
    if sigma < MIN_SIGMA:
        sigma = SIGMA0
    state["sigma"] = min(MAX_SIGMA, sigma)


def propose(ctx, state):
    if ctx["incumbent"] is None or random.random() >= SHARE:
        return None
    space = ctx["space"]
    sigma = state.get("sigma", SIGMA0)
    u = spacekit.encode(space, ctx["incumbent"]["config"])
    return spacekit.decode(space, [min(1.0, max(0.0, x + random.gauss(0.0, sigma))) for x in u])
