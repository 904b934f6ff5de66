# expect: contract_violation
# message: too many elements
def propose(ctx, state):
    return list(range(10**6))
