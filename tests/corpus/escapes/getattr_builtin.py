# expect: policy_violation
# ruff: noqa
def propose(ctx, state):
    return getattr(ctx, "__class__")
