# expect: policy_violation
# CVE-2023-41039: format_map has the same field resolution.
def propose(ctx, state):
    return "{a.__class__.__base__}".format_map({"a": ctx})
