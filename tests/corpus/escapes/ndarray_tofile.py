# expect: policy_violation
import numpy as np


def propose(ctx, state):
    np.zeros(3).tofile("/tmp/bilevel-escape-tofile")
    return None
