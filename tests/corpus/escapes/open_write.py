# expect: policy_violation
# message: uses 'open'
# open is not a builtin in the sandbox; using it is refused at compile time.
def propose(ctx, state):
    with open("/tmp/bilevel-escape-open", "w") as handle:
        handle.write("escaped")
    return None
