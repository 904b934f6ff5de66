# expect: policy_violation
# message: module 'time'
# Sleep exhaustion needs the time module, which is not importable.
def propose(ctx, state):
    import time
    time.sleep(100)
    return None
