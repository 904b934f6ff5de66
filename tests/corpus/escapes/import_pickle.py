# expect: policy_violation
# message: module 'pickle'
# pickle runs arbitrary callables on load (find_class): not importable.
import pickle


def propose(ctx, state):
    return pickle.loads(b"cos\nsystem\n(S'touch /tmp/bilevel-escape-pickle'\ntR.")
