# expect: policy_violation
# message: datetime64/timedelta64 dtypes are not allowed
# Issue 11: parsing "now" into a datetime64 reads the wall clock, a source of entropy
# (and of non-reproducible proposals); the numpy facade refuses time dtypes.
import numpy as np


def propose(ctx, state):
    now = np.array("now", dtype="M8[s]")
    return None
