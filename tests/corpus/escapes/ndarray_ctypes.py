# expect: policy_violation
# message: attribute 'ctypes'
# ndarray.ctypes exposes raw pointers.
import numpy as np


def propose(ctx, state):
    return np.zeros(3).ctypes.data
