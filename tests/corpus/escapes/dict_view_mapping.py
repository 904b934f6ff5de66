# expect: policy_violation
# message: attribute 'mapping'
# dict views expose the underlying mapping as .mapping.
def propose(ctx, state):
    return ctx.keys().mapping
