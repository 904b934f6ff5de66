# expect: contract_violation
# message: each weight must be a finite number in [0, 1], got a=1e+308
# Issue 11: weights of 1e308 are finite and non-negative, but their sum overflows math.fsum;
# the host's check used to raise OverflowError (a traceback) instead of refusing the value.
import spacekit


def propose(ctx, state):
    space = ctx["space"]
    config = spacekit.decode(space, [0.5] * spacekit.dims(space))
    for p in space["params"]:
        if p["type"] == "simplex":
            config[p["name"]] = {d: 1e308 for d in p["domains"]}
    return config
