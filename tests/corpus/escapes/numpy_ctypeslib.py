# expect: policy_violation
# message: attribute 'ctypeslib'
# FACTS: an exposed numpy allowed np.ctypeslib.ctypes.CDLL(None).
import numpy as np


def propose(ctx, state):
    libc = np.ctypeslib.ctypes.CDLL(None)
    libc.system(b"touch /tmp/bilevel-escape-ctypeslib")
    return None
