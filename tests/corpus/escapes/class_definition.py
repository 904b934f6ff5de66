# expect: policy_violation
# message: class definitions are not allowed
# Classes (and so dunder methods and metaclasses) are not part of the dialect.
class Evil:
    def __getattr__(self, name):
        return name


def propose(ctx, state):
    return Evil().x
