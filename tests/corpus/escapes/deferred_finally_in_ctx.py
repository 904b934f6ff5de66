# expect: policy_violation
# message: module 'os'
# Deferred code (issue 11): a started generator left in ctx runs its finally when ctx is freed, after the
# hook returned. It must run in mechanism mode, inside the call's accounting, and its violation must stick.
def propose(ctx, state):
    def later():
        try:
            yield 1
        finally:
            import os
    g = later()
    next(g)
    ctx["later"] = g
    return None
