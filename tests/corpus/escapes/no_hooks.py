# expect: contract_violation
# message: defines none of the hooks
def helper(ctx, state):
    return None
