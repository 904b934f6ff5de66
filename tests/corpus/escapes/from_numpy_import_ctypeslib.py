# expect: policy_violation
# message: attribute 'ctypeslib'
# "from m import x" falls back to sys.modules["m.x"] when the module object has a __name__;
# the numpy facade has none.
from numpy import ctypeslib


def propose(ctx, state):
    return ctypeslib.ctypes.CDLL(None)
