# expect: memory
# message: MemoryError
def propose(ctx, state):
    return [0] * 10**10
