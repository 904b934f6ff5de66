# expect: memory
# message: MemoryError
# FACTS: 'a' * 10**10 reached 6.3 GB RSS in 5 s without an OS limit.
def propose(ctx, state):
    return "a" * 10**10
