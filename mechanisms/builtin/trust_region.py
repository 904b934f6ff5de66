"""Trust region (TuRBO-style step-size control).

``observe`` counts consecutive improvements (kept trials) and consecutive
failures. After SUCC_TOL improvements in a row the trust region doubles;
after FAIL_TOL failures in a row it halves; it stays within
[MIN_SCALE, MAX_SCALE], and when halving would take it below MIN_SCALE it
has collapsed and restarts at 1. ``guide`` returns
``{"step_scale": scale}``, which multiplies the base proposer's step size.

Tunables:
- SUCC_TOL: improvements in a row that double the region.
- FAIL_TOL: failures in a row that halve it.
- MIN_SCALE, MAX_SCALE: bounds on the scale.
"""

SUCC_TOL = 3
FAIL_TOL = 6
MIN_SCALE = 0.02
MAX_SCALE = 2.0


def observe(ctx, state, trial):
    scale = state.get("scale", 1.0)
    succ = state.get("succ", 0)
    fail = state.get("fail", 0)
    if trial["kept"]:
        succ = succ + 1
        fail = 0
    else:
        fail = fail + 1
        succ = 0
    if succ >= SUCC_TOL:
        scale = min(MAX_SCALE, scale * 2.0)
        succ = 0
    if fail >= FAIL_TOL:
        scale = scale / 2.0
        fail = 0
        if scale < MIN_SCALE:
            scale = 1.0
    state["scale"] = scale
    state["succ"] = succ
    state["fail"] = fail


def guide(ctx, state):
    return {"step_scale": state.get("scale", 1.0)}
