# expect: policy_violation
# message: module 'select'
# Sleeping without time: select.select([], [], [], 3600) would block; select is not importable.
def propose(ctx, state):
    import select
    while True:
        select.select([], [], [], 3600)
