# expect: contract_violation
def helper(ctx, state):
    return None
