# expect: compile_error
# message: invalid character
# A guard rebound through a look-alike name: a fullwidth low line cannot start an identifier,
# so "＿getattr＿" is a syntax error, never "_getattr_".
＿getattr＿ = lambda obj, name: obj


def propose(ctx, state):
    return ctx.keys
