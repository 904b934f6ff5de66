# expect: policy_violation
# message: kept creating garbage
# Deferred code (issue 11): a self-renewing finaliser chain (each finally leaves a new generator in a new
# cycle) once survived collections and reloads. Now it is a violation of its own call, and what is left
# is never collected again (frozen), so it never runs in anyone else's call.
def renew():
    try:
        yield 1
    finally:
        g = renew()
        next(g)
        box = [g]
        box.append(box)


def propose(ctx, state):
    g = renew()
    next(g)
    box = [g]
    box.append(box)
    return None
