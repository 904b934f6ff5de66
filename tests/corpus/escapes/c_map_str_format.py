# expect: policy_violation
# message: attribute 'format'
# map calls str.format from C; reaching the unbound method is already an attribute access.
def propose(ctx, state):
    return list(map(str.format, ["{0.__class__.__base__}"], [ctx]))
