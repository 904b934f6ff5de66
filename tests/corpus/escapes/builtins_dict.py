# expect: policy_violation
def propose(ctx, state):
    return __builtins__["open"]("/tmp/bilevel-escape-builtins-dict", "w")
