# expect: timeout
# message: call timeout
# Deferred code (issue 11): a finaliser that spins must be charged to the mechanism whose object it is
# (here, inside its own call), never to whoever calls next.
def propose(ctx, state):
    def later():
        try:
            yield 1
        finally:
            while True:
                pass
    g = later()
    next(g)
    ctx["later"] = g
    return None
