# expect: contract_violation
# message: must be an integer (an int, not a float or a bool), got 6.0 (float)
# Issue 11: 6.0 == 6, so an equality check let a float through as an int parameter.
import spacekit


def propose(ctx, state):
    space = ctx["space"]
    config = spacekit.decode(space, [0.5] * spacekit.dims(space))
    for p in space["params"]:
        if p["type"] == "int":
            config[p["name"]] = float(min(p["high"], max(p["low"], 6)))
    return config
