# expect: policy_violation
# message: module 'gc'
# gc.get_objects() would reach every object in the worker.
def propose(ctx, state):
    import gc
    return len(gc.get_objects())
