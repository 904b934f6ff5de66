# expect: policy_violation
# message: attribute 'gi_running'
# Generators get no attributes at all at runtime, not only the ones blocked at compile time.
def propose(ctx, state):
    gen = (x for x in [1])
    return gen.gi_running
