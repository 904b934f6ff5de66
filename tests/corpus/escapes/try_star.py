# expect: policy_violation
# message: TryStar
# CVE-2025-22153: try/except* escaped the guards.
def propose(ctx, state):
    try:
        raise ValueError(1)
    except* ValueError as group:
        return group
    return None
