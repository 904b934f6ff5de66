# expect: policy_violation
# message: attribute 'func'
import functools


def propose(ctx, state):
    return functools.partial(max, 0).func
