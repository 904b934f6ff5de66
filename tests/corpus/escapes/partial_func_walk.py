# expect: policy_violation
import functools


def propose(ctx, state):
    return functools.partial(max, 0).func
