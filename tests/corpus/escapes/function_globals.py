# expect: policy_violation
# message: attribute 'func_globals'
# Functions of facades have no readable attributes (func_globals, __wrapped__, ...).
import numpy as np


def propose(ctx, state):
    return np.mean.func_globals
