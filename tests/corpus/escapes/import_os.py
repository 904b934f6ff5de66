# expect: policy_violation
# message: module 'os'
# Importing os at module level: the guarded __import__ refuses it.
import os


def propose(ctx, state):
    os.system("touch /tmp/bilevel-escape-import-os")
    return None
