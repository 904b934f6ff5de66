# expect: policy_violation
# message: attribute 'tofile'
import numpy as np


def propose(ctx, state):
    np.zeros(3).tofile("/tmp/bilevel-escape-tofile")
    return None
