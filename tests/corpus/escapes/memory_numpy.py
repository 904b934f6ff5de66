# expect: memory
import numpy as np


def propose(ctx, state):
    return np.ones(10**10).tolist()
