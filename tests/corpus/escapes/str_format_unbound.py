# expect: policy_violation
# message: attribute 'format'
# The unbound method reaches format without an instance attribute access.
def propose(ctx, state):
    return str.format("{0.__globals__}", propose)
