# expect: policy_violation
# message: __builtins__
def propose(ctx, state):
    return __builtins__["open"]("/tmp/bilevel-escape-builtins-dict", "w")
