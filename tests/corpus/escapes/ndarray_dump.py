# expect: policy_violation
# message: attribute 'dump'
# ndarray.dump pickles to a file.
import numpy as np


def propose(ctx, state):
    np.arange(3).dump("/tmp/bilevel-escape-dump")
    return None
