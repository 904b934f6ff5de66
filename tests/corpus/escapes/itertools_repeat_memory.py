# expect: memory
# message: MemoryError
# A C iterator materialised into a list of 10**10 items.
import itertools


def propose(ctx, state):
    return list(itertools.repeat(0, 10**10))
