# expect: policy_violation
# message: builtins
# "builtins" is a reserved name in RestrictedPython.
import builtins


def propose(ctx, state):
    return builtins.open("/tmp/bilevel-escape-builtins", "w")
