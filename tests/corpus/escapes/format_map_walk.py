# expect: policy_violation
# message: attribute 'format_map'
# CVE-2023-41039: format_map has the same field resolution.
def propose(ctx, state):
    return "{a.__class__.__base__}".format_map({"a": ctx})
