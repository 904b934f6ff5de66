# expect: policy_violation
# message: module 'os'
# ruff: noqa
# Violations are sticky: catching the exception does not hide it.
def propose(ctx, state):
    try:
        import os
    except BaseException:
        pass
    return None
