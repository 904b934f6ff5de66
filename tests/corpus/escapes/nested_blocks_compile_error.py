# expect: compile_error
# message: too many statically nested blocks
# ruff: noqa
# Parses, but CPython's compiler refuses more than 20 nested blocks: a compile-phase error.
def propose(ctx, state):
    for v0 in [0]:
        for v1 in [0]:
            for v2 in [0]:
                for v3 in [0]:
                    for v4 in [0]:
                        for v5 in [0]:
                            for v6 in [0]:
                                for v7 in [0]:
                                    for v8 in [0]:
                                        for v9 in [0]:
                                            for v10 in [0]:
                                                for v11 in [0]:
                                                    for v12 in [0]:
                                                        for v13 in [0]:
                                                            for v14 in [0]:
                                                                for v15 in [0]:
                                                                    for v16 in [0]:
                                                                        for v17 in [0]:
                                                                            for v18 in [0]:
                                                                                for v19 in [0]:
                                                                                    for v20 in [0]:
                                                                                        pass
    return None
