"""The worker builds only the ctx keys a hook can read (``sandbox.hookcode``): which hooks qualify, and
that what they get is what the whole ctx holds under those keys."""

from __future__ import annotations

import os
from types import CodeType

import pytest

from bilevel.mechanisms.library import load_source
from bilevel.sandbox import policy
from bilevel.sandbox.hookcode import ctx_keys
from bilevel.sandbox.hooks import Worker


def keys_of(source: str, hook: str = "guide") -> frozenset[str] | None:
    code, outcome = policy.compile_source(source, "<test>")
    assert code is not None, outcome
    found = {c.co_name: c for c in code.co_consts if isinstance(c, CodeType)}
    return ctx_keys(found[hook])


@pytest.mark.parametrize("body", [
    "return ctx",
    "return ctx.get('space')",
    "k = 'hist' + 'ory'\n    return ctx[k]",
    "f = lambda: ctx['space']\n    return f()",
    "return [ctx['space'] for i in range(2)]",
    "return [k for k in ctx]",
    "ctx = {}\n    return None",
    "ctx['x'] = 1\n    return None",
    "del ctx['space']\n    return None",
    "helper(ctx)\n    return None",
    "return (c := ctx)",
    "return dict(ctx)",
    "return len(ctx)",
    "return 'space' in ctx",
    "state['ctx'] = ctx\n    return None",
])
def test_a_hook_that_can_see_the_dict_gets_the_whole_ctx(body: str) -> None:
    source = f"def guide(ctx, state):\n    {body}\n\ndef helper(c):\n    return c\n"
    assert keys_of(source) is None


@pytest.mark.parametrize(("body", "keys"), [
    ("return {'step_scale': 1.0}", set()),
    ("return ctx['history'][-1]['config']", {"history"}),
    ("return ctx['space'] if state else ctx['budget']", {"space", "budget"}),
    ("x = ctx['incumbent']\n    y = ctx['trial_index']\n    return None", {"incumbent", "trial_index"}),
])
def test_constant_subscripts_only_give_their_keys(body: str, keys: set[str]) -> None:
    assert keys_of(f"def guide(ctx, state):\n    {body}\n") == frozenset(keys)


def test_varargs_hooks_get_the_whole_ctx() -> None:
    assert keys_of("def guide(*args):\n    return None\n") is None


def test_builtin_hooks() -> None:
    assert keys_of(load_source("trust_region")) == frozenset()
    assert keys_of(load_source("ucb_bandit")) == {"space"}
    assert keys_of(load_source("tabu"), "review") == {"space", "incumbent"}


def test_the_keys_a_hook_gets_hold_what_the_whole_ctx_holds() -> None:
    worker = Worker(os.open(os.devnull, os.O_WRONLY), 1_000_000)
    worker.space = {"params": [{"name": "x", "type": "float", "low": 0.0, "high": 1.0, "log": False}]}
    worker.budget = 9
    worker.record({"index": 0, "config": {"x": 0.5}, "score": 1.0, "kept": True, "source": "s"})
    worker.record({"index": 1, "config": {"x": 0.25}, "score": 2.0, "kept": False, "source": "s"})
    full = worker.ctx(2, {"focus": ["x"]})
    for keys in ({"space"}, {"incumbent", "budget"}, {"trial_index", "guidance"}, set(), {"space", "nope"}):
        part = worker.ctx(2, {"focus": ["x"]}, frozenset(keys))
        assert part == {k: full[k] for k in keys if k in full}
        for k in part:
            if isinstance(part[k], dict):
                assert part[k] is not full[k] and part[k] is not worker.space and part[k] is not worker.incumbent
    with_history = worker.ctx(2, {}, frozenset({"history", "incumbent"}))
    assert with_history["incumbent"] is with_history["history"][0]
