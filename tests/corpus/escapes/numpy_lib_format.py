# expect: policy_violation
# message: attribute 'lib'
# numpy.lib.format reads and writes .npy files (with pickles): not in the facade.
import numpy as np


def propose(ctx, state):
    np.lib.format.open_memmap("/tmp/bilevel-escape-memmap.npy", mode="w+", shape=(4,))
    return None
