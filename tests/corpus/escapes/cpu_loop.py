# expect: timeout
def propose(ctx, state):
    while True:
        pass
