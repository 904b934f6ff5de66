# expect: policy_violation
# message: uses 'open'
# Look-alike Unicode identifiers: Python folds identifiers with NFKC, so fullwidth
# letters spell "open" and the compile-time check must see the folded name.
def propose(ctx, state):
    return ｏｐｅｎ("/tmp/bilevel-escape-unicode-open", "w")
