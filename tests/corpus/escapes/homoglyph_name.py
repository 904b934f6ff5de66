# expect: crash
# message: NameError
# ruff: noqa
# A Cyrillic "о" does not fold to Latin "o": "оpen" is just an unknown name, never the builtin.
def propose(ctx, state):
    return оpen("/tmp/bilevel-escape-homoglyph", "w")
