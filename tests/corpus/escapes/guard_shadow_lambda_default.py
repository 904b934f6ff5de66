# expect: policy_violation
# message: _getiter_
# ruff: noqa
def propose(ctx, state):
    leak = lambda _getiter_=None: _getiter_
    return leak()
