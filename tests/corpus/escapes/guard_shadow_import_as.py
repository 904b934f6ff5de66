# expect: policy_violation
# ruff: noqa
# Rebinding a guard through "import ... as".
import math as _getitem_


def propose(ctx, state):
    return None
