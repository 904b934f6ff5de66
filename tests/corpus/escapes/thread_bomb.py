# expect: policy_violation
# message: module 'threading'
# A thread bomb needs threading; it is not importable.
def spin():
    while True:
        pass


def propose(ctx, state):
    import threading
    for i in range(10000):
        threading.Thread(target=spin).start()
