# expect: policy_violation
# message: module 'bilevel.judge.decision'
# A mechanism that tries to reach the judge's code (to change a threshold or a panel).
def propose(ctx, state):
    import bilevel.judge.decision
    return None
