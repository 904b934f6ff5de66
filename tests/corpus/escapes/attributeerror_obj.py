# expect: policy_violation
# message: attribute 'missing'
# ruff: noqa
# CVE-2024-47532: AttributeError.obj hands back the object the lookup failed on.
import spacekit


def propose(ctx, state):
    try:
        spacekit.missing
    except Exception as exc:
        return exc.obj
    return None
