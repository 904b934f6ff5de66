# expect: policy_violation
# message: module 'string'
# CVE-2026-76825: string.Formatter resolves fields (attribute walks) itself.
def propose(ctx, state):
    import string
    return string.Formatter().get_field("0.__class__", [1], {})
