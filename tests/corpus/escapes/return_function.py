# expect: contract_violation
# Only plain data crosses the process boundary.
def propose(ctx, state):
    return {"x": propose}
