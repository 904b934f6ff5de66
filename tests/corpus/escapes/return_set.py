# expect: contract_violation
# message: a set is not plain data
def propose(ctx, state):
    return {1, 2, 3}
