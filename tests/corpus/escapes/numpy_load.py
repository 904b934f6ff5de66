# expect: policy_violation
# message: attribute 'load'
# np.load reads (and may unpickle) files.
import numpy as np


def propose(ctx, state):
    return np.load("/etc/hostname", allow_pickle=True)
