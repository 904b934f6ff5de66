# expect: policy_violation
# message: cannot iterate over module 'numpy'
# Builtins that iterate in C (sorted, list) go through the iteration guard: a facade is not iterable.
import numpy as np


def propose(ctx, state):
    return sorted(np)
