"""Allocation over a data mix's domains by Thompson sampling.

Every domain of every simplex block (a data mix) is an arm with a Beta
posterior. ``observe`` compares each scored trial with the incumbent it was
made against: every domain whose weight the trial raised by more than
MIN_RAISE was played; it wins when the trial was kept (it improved on the
incumbent) and loses otherwise. Old evidence fades: the counts are
multiplied by DISCOUNT at every trial. On one trial in EVERY, ``propose``
draws a sample from every domain's posterior ``Beta(1 + wins, 1 + losses)``
and moves the incumbent's mix a share STEP of the way towards the domain
with the highest draw (the other parameters unchanged). In a space without
a simplex block it proposes nothing.

Tunables:
- EVERY: propose on one trial in EVERY.
- STEP: how far the mix moves towards the drawn domain (0-1).
- MIN_RAISE: the weight increase that counts as playing a domain.
- DISCOUNT: per-trial decay of the win and loss counts (1.0 = none).
"""

import random

import spacekit

EVERY = 3
STEP = 0.25
MIN_RAISE = 0.01
DISCOUNT = 0.95


def blocks(space):
    return [p for p in spacekit.params(space) if p["type"] == "simplex"]


def observe(ctx, state, trial):
    found = blocks(ctx["space"])
    if not found:
        return
    arms = state.get("arms", {})
    before = state.get("incumbent")
    for p in found:
        for dom in p["domains"]:
            key = p["name"] + "." + dom
            w, l = arms.get(key, [0.0, 0.0])
            w = w * DISCOUNT
            l = l * DISCOUNT
            if before is not None and trial["score"] is not None:
                raise_by = trial["config"][p["name"]][dom] - before[p["name"]][dom]
                if raise_by > MIN_RAISE:
                    if trial["kept"]:
                        w = w + 1.0
                    else:
                        l = l + 1.0
            arms[key] = [w, l]
    if trial["kept"]:
        state["incumbent"] = trial["config"]
    state["arms"] = arms


def propose(ctx, state):
    found = blocks(ctx["space"])
    if not found or ctx["incumbent"] is None or ctx["trial_index"] % EVERY != EVERY - 1:
        return None
    arms = state.get("arms", {})
    config = dict(ctx["incumbent"]["config"])
    for p in found:
        draws = []
        for dom in p["domains"]:
            w, l = arms.get(p["name"] + "." + dom, [0.0, 0.0])
            draws.append(random.betavariate(1.0 + w, 1.0 + l))
        best = max(range(len(draws)), key=lambda i: (draws[i], -i))
        mix = config[p["name"]]
        raw = [(1.0 - STEP) * mix[dom] + (STEP if i == best else 0.0) for i, dom in enumerate(p["domains"])]
        config[p["name"]] = spacekit.normalise(p["domains"], raw)
    return config
