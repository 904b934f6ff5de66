# expect: policy_violation
# ruff: noqa
def propose(ctx, state):
    leak = lambda _getiter_=None: _getiter_
    return leak()
