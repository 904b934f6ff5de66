# expect: contract_violation
def propose(ctx, state):
    return {1, 2, 3}
