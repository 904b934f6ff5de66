# expect: policy_violation
# message: f_back
# CVE-2023-37271: a generator's frame leads to f_back and the caller's globals.
def propose(ctx, state):
    gen = (x for x in [1])
    return gen.gi_frame.f_back.f_globals
