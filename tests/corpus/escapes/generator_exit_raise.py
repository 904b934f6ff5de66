# expect: crash
# message: GeneratorExit
# A BaseException that is not an Exception must not take the worker down.
def propose(ctx, state):
    raise GeneratorExit("bye")
