# expect: policy_violation
# The import happens inside a hook, at call time.
def propose(ctx, state):
    import subprocess
    subprocess.run(["touch", "/tmp/bilevel-escape-subprocess"])
    return None
