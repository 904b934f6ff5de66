# expect: policy_violation
# message: module 'multiprocessing'
# A fork bomb needs os (or multiprocessing); neither is importable (layer 2 stops fork too).
def propose(ctx, state):
    import multiprocessing
    while True:
        multiprocessing.Process(target=propose, args=(ctx, state)).start()
