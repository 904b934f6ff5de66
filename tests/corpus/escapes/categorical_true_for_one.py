# expect: contract_violation
# message: k=True (bool) is not one of [1, 'b']
# Issue 11: True == 1 and 1.0 == 1, so an equality check let True through as the choice 1.
import spacekit


def propose(ctx, state):
    space = ctx["space"]
    config = spacekit.decode(space, [0.5] * spacekit.dims(space))
    for p in space["params"]:
        if p["type"] == "categorical":
            for c in p["choices"]:
                if c == 1 and not isinstance(c, bool):
                    config[p["name"]] = True
    return config
