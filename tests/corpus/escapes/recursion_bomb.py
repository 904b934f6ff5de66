# expect: crash
# message: RecursionError
def down(n):
    return down(n + 1)


def propose(ctx, state):
    return down(0)
