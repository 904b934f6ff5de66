# expect: policy_violation
# message: cannot modify 'function' object
# _write_ allows items of the mechanism's own containers only, never attributes.
def helper():
    return 1


def propose(ctx, state):
    helper.evil = 1
    return None
