# expect: policy_violation
# message: module 'bilevel.runs'
# From-import of the host's own run store package.
from bilevel.runs import store


def propose(ctx, state):
    return None
