# expect: ok
import random

import spacekit


def observe(ctx, state, trial):
    state.setdefault("seen", []).append(spacekit.key(ctx["space"], trial["config"]))


def propose(ctx, state):
    space = ctx["space"]
    return spacekit.decode(space, [random.random() for d in range(spacekit.dims(space))])


def review(ctx, state, candidate):
    if spacekit.key(ctx["space"], candidate) in state.get("seen", []):
        return "seen before"
    return None
