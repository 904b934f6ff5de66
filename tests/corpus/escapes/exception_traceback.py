# expect: policy_violation
# message: tb_frame
# ruff: noqa
# Tracebacks lead to frames.
def propose(ctx, state):
    try:
        1 / 0
    except ZeroDivisionError as exc:
        return exc.__traceback__.tb_frame.f_globals
    return None
