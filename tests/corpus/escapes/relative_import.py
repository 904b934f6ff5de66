# expect: policy_violation
# message: relative imports
# ruff: noqa
# A relative import would resolve against the worker's package.
from . import worker


def propose(ctx, state):
    return None
