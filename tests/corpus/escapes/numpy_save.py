# expect: policy_violation
# message: attribute 'save'
# FACTS: an exposed numpy allowed np.save.
import numpy as np


def propose(ctx, state):
    np.save("/tmp/bilevel-escape-npsave.npy", np.zeros(3))
    return None
