# expect: policy_violation
# message: _getattr_
# ruff: noqa
# Rebinding a guard at module level.
_getattr_ = lambda obj, name: None


def propose(ctx, state):
    return None
