"""Layer 1 of the sandbox (``sandbox.policy`` and ``sandbox.facades``), tested in-process.

Each test compiles restricted source and runs it in the globals a worker would
build, without a worker process: these tests are about what the guards allow
and refuse, not about process isolation (see test_sandbox_session.py).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from bilevel.sandbox import PolicyViolation, Status, compile_mechanism, policy
from bilevel.sandbox.facades import NUMPY, build_modules
from bilevel.sandbox.policy import (
    BASE_BUILTINS,
    Namespace,
    compile_source,
    restricted_globals,
    take_violations,
)


def load(source: str) -> dict[str, Any]:
    """Compile ``source`` under the policy and execute it into fresh restricted globals."""
    code, outcome = compile_source(source, "<test>")
    assert code is not None, outcome
    glb = restricted_globals(build_modules(random.Random(0)))
    take_violations()
    exec(code, glb)
    return glb


def run(body: str, prelude: str = "", ctx: dict[str, Any] | None = None) -> Any:
    """Run ``body`` as the body of ``propose``; return its value (exceptions propagate)."""
    lines = "\n".join("    " + line for line in body.splitlines())
    glb = load(f"{prelude}\ndef propose(ctx, state):\n{lines}\n")
    return glb["propose"](ctx if ctx is not None else {"space": {"params": []}}, {})


def refused(body: str, prelude: str = "") -> PolicyViolation:
    """Run ``body`` and return the PolicyViolation it must raise (and record)."""
    with pytest.raises(PolicyViolation) as info:
        run(body, prelude)
    assert take_violations(), "a violation must also be recorded"
    return info.value


def compile_status(source: str) -> Status:
    return compile_mechanism(source).status


HOOK = "\ndef propose(ctx, state):\n    return None\n"


# --------------------------------------------------------------------------- compile time
@pytest.mark.parametrize("snippet", [
    "_x = 1",
    "y = [].__class__",
    "def _helper():\n    pass",
    "z = ().__class__.__bases__[0].__subclasses__()",
    "def f(_getattr_, /):\n    return _getattr_",
    "f = lambda _getiter_=None: 1",
    "import math as _getattr_",
    "w = (_write_ := 1)",
    "g = (i for i in [1]).gi_frame",
    "t = (i for i in [1]).gi_code",
])
def test_underscore_and_frame_names_are_refused_at_compile_time(snippet: str) -> None:
    outcome = compile_mechanism(snippet + HOOK)
    assert outcome.status is Status.POLICY_VIOLATION
    assert outcome.message


def test_class_definitions_and_try_star_are_refused() -> None:
    assert compile_status("class A:\n    pass" + HOOK) is Status.POLICY_VIOLATION
    assert compile_status("try:\n    pass\nexcept* ValueError:\n    pass" + HOOK) is Status.POLICY_VIOLATION


@pytest.mark.parametrize("name", ["open", "getattr", "type", "vars", "dir", "globals", "compile", "exit"])
def test_unavailable_builtins_are_policy_violations(name: str) -> None:
    outcome = compile_mechanism(f"def propose(ctx, state):\n    return {name}('/tmp/x')\n")
    assert outcome.status is Status.POLICY_VIOLATION
    assert repr(name) in outcome.message
    assert name not in BASE_BUILTINS


def test_a_name_the_mechanism_binds_itself_is_fine() -> None:
    source = "def propose(ctx, state):\n    type = ctx['kind']\n    return type\n"
    assert compile_mechanism(source).ok


@pytest.mark.parametrize("name", ["open", "exec", "eval", "compile", "type", "getattr", "vars", "dir",
                                  "globals", "locals", "setattr", "__build_class__", "__import__", "id"])
def test_dangerous_builtins_are_absent(name: str) -> None:
    assert name not in BASE_BUILTINS


def test_compile_mechanism_statuses() -> None:
    ok = compile_mechanism("def observe(ctx, state, trial):\n    pass\ndef propose(ctx, state):\n    return None\n")
    assert ok.ok and ok.value == {"hooks": ["propose", "observe"]}
    bad = compile_mechanism("def propose(ctx, state):\n    return (\n\n")
    assert bad.status is Status.COMPILE_ERROR and "line" in bad.message
    assert compile_mechanism("x = 1\n").status is Status.CONTRACT_VIOLATION
    assert compile_mechanism("def helper():\n    return 1\n").status is Status.CONTRACT_VIOLATION
    assert compile_mechanism("return 1\n").status is Status.COMPILE_ERROR
    assert compile_mechanism("x = 1\n" * 300_000).status is Status.COMPILE_ERROR


# --------------------------------------------------------------------------- imports
@pytest.mark.parametrize("module", ["os", "subprocess", "sys", "io", "ctypes", "string", "gc",
                                    "numpy.ctypeslib", "os.path", "importlib"])
def test_disallowed_imports_name_the_module(module: str) -> None:
    violation = refused(f"import {module}")
    assert repr(module) in str(violation)


def test_from_imports_of_hidden_members_are_refused() -> None:
    for stmt in ("from numpy import ctypeslib", "from numpy import save", "from os import path",
                 "from random import seed", "from spacekit import math"):
        refused(stmt)


def test_relative_import_is_refused() -> None:
    refused("from . import worker")


def test_import_builtins_is_a_reserved_name() -> None:
    assert compile_status("import builtins" + HOOK) is Status.POLICY_VIOLATION


def test_allowed_imports_work() -> None:
    value = run(
        "import math, statistics, itertools, functools, collections, spacekit\n"
        "import numpy as np\n"
        "import numpy.linalg\n"
        "from numpy.linalg import norm\n"
        "from random import random\n"
        "return [math.sqrt(4.0), statistics.median([1, 3, 2]), list(itertools.islice(itertools.count(), 2)),\n"
        "        functools.reduce(lambda a, b: a + b, [1, 2, 3]), collections.Counter('aab').most_common(1),\n"
        "        float(np.linalg.norm(np.array([3.0, 4.0]))), float(norm(np.ones(4))), random() < 1.0,\n"
        "        spacekit.dims({'params': []})]"
    )
    assert value == [2.0, 2, [0, 1], 6, [("a", 2)], 5.0, 2.0, True, 0]
    assert not take_violations()


def test_c_level_imports_get_nothing_back() -> None:
    guarded = restricted_globals(build_modules(random.Random(0)))["__builtins__"]["__import__"]
    assert guarded("os", None, None, [], 0) is None       # numpy's PyImport_Import path: side effect only
    with pytest.raises(PolicyViolation):
        guarded("os", None, None, None, 0)                # the import statement's path
    with pytest.raises(PolicyViolation):
        guarded("not_loaded_anywhere_xyz", None, None, [], 0)
    take_violations()


# --------------------------------------------------------------------------- attribute walks
@pytest.mark.parametrize("body", [
    'return "{0.__class__}".format(1)',
    'return "{0.__class__.__mro__}".format(ctx)',
    'return "{a.__class__}".format_map({"a": 1})',
    'return str.format("{0.__class__}", 1)',
    'return str.format_map("{a}", {"a": 1})',
])
def test_format_string_attribute_walks_are_refused(body: str) -> None:
    assert "format" in str(refused(body))


def test_generator_attributes_are_refused_at_runtime() -> None:
    refused("g = (i for i in [1])\nreturn g.gi_running")
    refused("g = (i for i in [1])\nreturn g.send")


def test_exception_objects_expose_only_args() -> None:
    assert run("try:\n    raise ValueError('x')\nexcept ValueError as e:\n    return e.args") == ("x",)
    refused("try:\n    raise ValueError('x')\nexcept ValueError as e:\n    return e.with_traceback")
    refused("import spacekit\ntry:\n    spacekit.nothing\nexcept Exception as e:\n    return e.obj")


@pytest.mark.parametrize("body", [
    "return np.ctypeslib",
    "return np.ctypeslib.ctypes.CDLL(None)",
    "return np.zeros(3).ctypes",
    "np.save('/tmp/bilevel-policy-test', np.zeros(3))",
    "return np.load('/tmp/bilevel-policy-test.npy')",
    "np.zeros(3).tofile('/tmp/bilevel-policy-test')",
    "np.zeros(3).dump('/tmp/bilevel-policy-test')",
    "return np.zeros(3).astype(float)",
    "return np.zeros(3).data",
    "return np.zeros(3).base",
    "return np.lib",
    "return np.mean.x",
])
def test_numpy_escape_routes_are_refused(body: str) -> None:
    refused(body, prelude="import numpy as np")


@pytest.mark.parametrize("body", [
    "return np.array('now', dtype='M8[s]')",
    "return np.array('now', 'M8')",
    "return np.asarray(['today'], dtype='datetime64[D]')",
    "return np.zeros(3, dtype='m8[s]')",
    "return np.zeros(3, 'timedelta64')",
    "return np.full(2, 'now', dtype='M8[s]')",
    "return np.arange('2020-01', '2020-03', dtype='M8[D]')",
    "return np.ones(2, dtype=[('t', 'M8[s]')])",
    "return np.zeros(2, dtype=('M8[s]', (2,)))",
    "return np.zeros(2, dtype={'names': ['t'], 'formats': ['M8[s]']})",
    "return np.concatenate([np.array(['now'])], dtype='M8[s]', casting='unsafe')",
    "return np.maximum([1], [2], signature='mm->m')",
    "return np.sum([1, 2], dtype='m8')",
    "return np.busday_count('2020-01-01', '2020-02-01')",
    "return np.datetime64('now')",
    "return np.datetime_as_string",
])
def test_numpy_time_is_refused(body: str) -> None:
    exc = refused(body, prelude="import numpy as np")
    assert "datetime64" in str(exc) or "no allowed attribute" in str(exc)


def test_numpy_still_takes_ordinary_dtypes_and_strings() -> None:
    value = run("return [np.zeros(2, 'f8').tolist(), np.array(['m', 'M']).tolist(), np.full(2, 'm').tolist(),\n"
                "        np.arange(3, dtype=int).tolist(), float(np.mean([1, 2], dtype=float)),\n"
                "        np.where(np.array([True, False]), 'M', 'm').tolist(), np.linspace(0, 1, 3, True, True)[1]]",
                prelude="import numpy as np")
    assert value == [[0.0, 0.0], ["m", "M"], ["m", "m"], [0, 1, 2], 1.5, ["M", "m"], 0.5]


def test_ndarray_safe_attributes_work() -> None:
    value = run("a = np.arange(6).reshape(2, 3)\n"
                "return [a.shape, a.ndim, a.size, a.T.tolist(), float(a.mean()), int(a.sum()), a.flatten().tolist(),\n"
                "        int(a.argmax()), a.copy().item(0)]", prelude="import numpy as np")
    assert value == [(2, 3), 2, 6, [[0, 3], [1, 4], [2, 5]], 2.5, 15, [0, 1, 2, 3, 4, 5], 5, 0]


def test_module_and_function_walks_are_refused() -> None:
    refused("return spacekit.math", prelude="import spacekit")
    refused("return random.seed", prelude="import random")
    refused("return random.getstate()", prelude="import random")
    refused("return functools.partial(max, 0).func", prelude="import functools")
    refused("return ctx.keys().mapping")
    refused("return math.sqrt.x", prelude="import math")


def test_facades_hide_dunders_and_are_frozen() -> None:
    assert isinstance(NUMPY, Namespace)
    for name in ("__name__", "__dict__", "__file__", "__class__", "__spec__", "__loader__"):
        with pytest.raises(AttributeError):
            getattr(NUMPY, name)
    with pytest.raises(PolicyViolation):
        NUMPY.save  # noqa: B018
    with pytest.raises(PolicyViolation):
        NUMPY.mean = None
    take_violations()
    refused("math.pi = 3.0", prelude="import math")
    refused("np.linalg.norm = None", prelude="import numpy as np")


# --------------------------------------------------------------------------- builtins and writes
def test_wrapped_builtins_work_on_lists() -> None:
    value = run(
        "xs = [3, 1, 2]\n"
        "return [sorted(xs), sorted(xs, reverse=True), list(zip(xs, 'abc')), min(xs), max(xs),\n"
        "        min(4, 5), max(xs, key=lambda v: -v), sum(xs), sum([0.5], 1), list(enumerate(xs, 1)),\n"
        "        list(reversed(xs)), list(map(str, xs)), list(filter(None, [0, 1])), any(xs), all([]),\n"
        "        tuple(xs), set(xs) == {1, 2, 3}, frozenset([1]) == frozenset({1}), dict(zip('ab', xs)),\n"
        "        dict(a=1), dict({'b': 2}), dict.fromkeys('ab', 0), next(iter(xs)), isinstance(xs, list),\n"
        "        isinstance({}, (list, dict)), isinstance(1, (float, int)), min([], default=None),\n"
        "        str.lower('A'), divmod(7, 2), round(2.567, 2), abs(-1), pow(2, 3), len(xs), format(0.5, '.2f')]"
    )
    assert value == [
        [1, 2, 3], [3, 2, 1], [(3, "a"), (1, "b"), (2, "c")], 1, 3, 4, 1, 6, 1.5, [(1, 3), (2, 1), (3, 2)],
        [2, 1, 3], ["3", "1", "2"], [1], True, True, (3, 1, 2), True, True, {"a": 3, "b": 1},
        {"a": 1}, {"b": 2}, {"a": 0, "b": 0}, 3, True, True, True, None, "a", (3, 1), 2.57, 1, 8, 3, "0.50",
    ]


def test_mechanisms_may_mutate_their_own_containers() -> None:
    value = run(
        "d = {'a': 1}\n"
        "d['b'] = 2\n"
        "del d['a']\n"
        "xs = [1, 2, 3]\n"
        "xs[0] = 9\n"
        "xs[1:] = [8]\n"
        "xs.append(7)\n"
        "q = collections.deque([1])\n"
        "q[0] = 5\n"
        "c = collections.Counter()\n"
        "c['k'] = 2\n"
        "a = np.zeros(2)\n"
        "a[1] = 3.0\n"
        "state['n'] = state.get('n', 0) + 1\n"
        "n = 1\n"
        "n += 2\n"
        "x, (y, z) = 1, (2, 3)\n"
        "return [d, xs, list(q), dict(c), a.tolist(), state, n, x + y + z]",
        prelude="import collections\nimport numpy as np",
    )
    assert value == [{"b": 2}, [9, 8, 7], [5], {"k": 2}, [0.0, 3.0], {"n": 1}, 3, 6]


def test_attribute_writes_on_foreign_objects_are_refused() -> None:
    refused("def f():\n    pass\nf.evil = 1")
    refused("np.zeros(2).shape = (1, 2)", prelude="import numpy as np")
    refused("d = collections.defaultdict(list)\nd.default_factory = None", prelude="import collections")
    refused("(1).real = 2")


def test_violations_are_sticky_even_when_caught() -> None:
    value = run("try:\n    import os\nexcept Exception:\n    pass\nreturn 1")
    assert value == 1
    recorded = take_violations()
    assert recorded and "'os'" in recorded[0].message


def test_print_is_collected_never_written(capsys: pytest.CaptureFixture[str]) -> None:
    value = run("for i in range(10000):\n    print('line', i)\nreturn printed")
    assert value.startswith("line 0\n") and len(value) <= policy.PRINT_CAP_CHARS
    assert capsys.readouterr().out == ""
