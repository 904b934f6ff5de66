# expect: policy_violation
# message: module 'subprocess'
# The import happens inside a hook, at call time.
def propose(ctx, state):
    import subprocess
    subprocess.run(["touch", "/tmp/bilevel-escape-subprocess"])
    return None
