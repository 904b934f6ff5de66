# expect: policy_violation
# message: module 'sys'
# sys.modules would hand out every loaded module.
def propose(ctx, state):
    import sys
    return sys.modules["os"].listdir("/")
