# expect: policy_violation
# message: uses 'type'
# type() would give classes, and type(...).__subclasses__ and friends.
def propose(ctx, state):
    return type(ctx).mro()
