# expect: policy_violation
# message: module 'runs'
# From-import of the host's own run store package.
from runs import store


def propose(ctx, state):
    return None
