# expect: policy_violation
# message: module 'os'
# Deferred code (issue 11): a generator in a reference cycle is freed only by the garbage collector, which
# the worker once ran after the call's violations were read (and discarded). Now it runs inside the call.
def propose(ctx, state):
    def later():
        try:
            yield 1
        finally:
            import os
    g = later()
    next(g)
    box = [g]
    box.append(box)
    return None
