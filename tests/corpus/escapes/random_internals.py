# expect: policy_violation
# message: attribute 'seed'
# The random facade has no seed or state: a mechanism cannot fix or read its own stream.
import random


def propose(ctx, state):
    random.seed(0)
    return random.random()
