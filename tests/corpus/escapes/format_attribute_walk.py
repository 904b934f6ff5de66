# expect: policy_violation
# message: attribute 'format'
# ruff: noqa
# str.format resolves "{0.attr}" with plain getattr, bypassing _getattr_.
def propose(ctx, state):
    return "{0.__class__.__mro__}".format(ctx)
