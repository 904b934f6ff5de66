# expect: policy_violation
# message: cannot modify module 'math'
# Facades are frozen: a mechanism cannot change math for the next mechanism.
import math


def propose(ctx, state):
    math.pi = 3.0
    return None
