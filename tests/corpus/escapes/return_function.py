# expect: contract_violation
# message: a function is not plain data
# Only plain data crosses the process boundary.
def propose(ctx, state):
    return {"x": propose}
