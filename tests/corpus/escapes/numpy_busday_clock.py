# expect: policy_violation
# message: 'busday_count'
# Strict values (issue 11): numpy's business-day functions read "today" (a clock); they are not in the facade.
import numpy as np


def propose(ctx, state):
    return {"days": int(np.busday_count("2020-01-01", "today"))}
