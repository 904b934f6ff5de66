# expect: memory
# message: MemoryError
# Growing step by step rather than in one allocation.
def propose(ctx, state):
    chunks = []
    while True:
        chunks.append("x" * 10**7)
