# expect: policy_violation
# message: _getitem_
# ruff: noqa
# Rebinding a guard through "import ... as".
import math as _getitem_


def propose(ctx, state):
    return None
