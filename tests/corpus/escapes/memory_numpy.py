# expect: memory
# message: MemoryError
import numpy as np


def propose(ctx, state):
    return np.ones(10**10).tolist()
