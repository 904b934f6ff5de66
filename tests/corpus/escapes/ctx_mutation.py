# expect: ok
# ctx is a fresh copy per call: mutating it is harmless.
def guide(ctx, state):
    ctx["history"].append("junk")
    ctx["space"]["params"] = []
    return None


def propose(ctx, state):
    if ctx["space"]["params"] == [] or "junk" in ctx["history"]:
        return {"corrupted": True}
    return None
