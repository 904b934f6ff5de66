# expect: timeout
# message: exceeded the call timeout
def propose(ctx, state):
    while True:
        pass
