# expect: policy_violation
# message: uses 'getattr'
# ruff: noqa
def propose(ctx, state):
    return getattr(ctx, "__class__")
