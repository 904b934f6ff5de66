# expect: contract_violation
def propose(ctx, state):
    return list(range(10**6))
