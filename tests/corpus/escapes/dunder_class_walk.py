# expect: policy_violation
# message: __subclasses__
# The classic walk to object.__subclasses__(): refused at compile time.
def propose(ctx, state):
    for cls in ().__class__.__bases__[0].__subclasses__():
        if cls.__name__ == "Popen":
            return cls(["touch", "/tmp/bilevel-escape-subclasses"])
    return None
