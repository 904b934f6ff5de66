# expect: policy_violation
# message: attribute 'math'
# The real spacekit module imports math; the facade exposes only spacekit's functions.
import spacekit


def propose(ctx, state):
    return spacekit.math.sqrt(2.0)
