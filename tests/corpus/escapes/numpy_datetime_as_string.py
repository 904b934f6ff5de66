# expect: policy_violation
# message: 'datetime_as_string'
# Strict values (issue 11): datetime formatting (the host's local time zone) is not in the facade.
import numpy as np


def propose(ctx, state):
    return {"now": str(np.datetime_as_string(np.datetime64("now"), timezone="local"))}
