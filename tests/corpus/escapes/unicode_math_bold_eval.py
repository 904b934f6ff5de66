# expect: policy_violation
# message: Eval calls
# Mathematical bold letters fold to ASCII: 𝐞𝐯𝐚𝐥 is eval, which the sandbox does not provide.
def propose(ctx, state):
    return 𝐞𝐯𝐚𝐥("__import__('os').system('touch /tmp/bilevel-escape-eval')")
