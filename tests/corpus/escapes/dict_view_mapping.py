# expect: policy_violation
# dict views expose the underlying mapping as .mapping.
def propose(ctx, state):
    return ctx.keys().mapping
