# expect: policy_violation
# message: _getattr_
# CVE-2026-55830: a positional-only parameter named like a guard shadows it inside the function.
def helper(_getattr_, /):
    return ().__class__


def propose(ctx, state):
    return helper(lambda obj, name: None)
