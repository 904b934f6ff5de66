"""The conformance check: built-ins pass; broken mechanisms fail with the right status and an example."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bilevel.inner.space import Space
from bilevel.judge.conformance import ConformanceReport, Example, check_conformance, examples
from bilevel.mechanisms import library
from bilevel.sandbox import Limits, Status

OUTSIDE = '''
import spacekit

def propose(ctx, state):
    out = {}
    for p in spacekit.params(ctx["space"]):
        out[p["name"]] = 1e9 if p["type"] in ("float", "int") else "not a choice"
    return out
'''

GLOBAL_COUNTER = '''
import spacekit

CALLS = []

def propose(ctx, state):
    CALLS.append(1)
    d = spacekit.dims(ctx["space"])
    return spacekit.decode(ctx["space"], [(len(CALLS) * 0.37) % 1.0] * d)
'''

STATE_IN_PROPOSE = '''
import spacekit

def propose(ctx, state):
    state["n"] = state.get("n", 0) + 1
    d = spacekit.dims(ctx["space"])
    return spacekit.decode(ctx["space"], [(state["n"] * 0.37) % 1.0] * d)
'''

# The address of a fresh object, read from its repr: entropy that no seed controls.
HIDDEN_ENTROPY = '''
import spacekit

def propose(ctx, state):
    text = repr(lambda: 0)
    h = int(text.split(" at ")[1].rstrip(">"), 16)
    d = spacekit.dims(ctx["space"])
    return spacekit.decode(ctx["space"], [(h % 1009) / 1009.0] * d)
'''

RAISES = '''
def guide(ctx, state):
    return {"step_scale": 1.0 / (len(ctx["history"]) - len(ctx["history"]))}
'''

RUNTIME_POLICY = '''
def guide(ctx, state):
    x = "{0}".format(1)
    return None
'''

LOOPS = '''
def guide(ctx, state):
    while True:
        pass
'''

MEMORY_HOG = '''
def guide(ctx, state):
    x = "a" * (10 ** 10)
    return None
'''

BAD_GUIDANCE = '''
def guide(ctx, state):
    return {"speed": 2}
'''

BAD_REVIEW = '''
def review(ctx, state, candidate):
    return [1, 2]
'''

LOAD_CRASH = '''
X = 1 / 0

def guide(ctx, state):
    return None
'''

FUTURE_IMPORT = '''from __future__ import annotations

def guide(ctx, state):
    return None
'''

# Deterministic, valid and using history: must pass.
GOOD_STATELESS = '''
import random
import spacekit

def propose(ctx, state):
    if len(ctx["history"]) % 2:
        return None
    return spacekit.decode(ctx["space"], [random.random() for i in range(spacekit.dims(ctx["space"]))])

def review(ctx, state, candidate):
    if len(ctx["history"]) % 3 == 0:
        return "try another"
    return None
'''


def assert_example(report: ConformanceReport, hook: str) -> None:
    assert report.example is not None
    ex = report.example
    assert ex["hook"] == hook
    Space.from_json(ex["space"])
    assert isinstance(ex["history"], list)
    json.dumps(report.to_json())  # plain data all the way


@pytest.mark.parametrize("name", library.ALL_NAMES)
def test_builtin_passes(name: str) -> None:
    report = check_conformance(library.load_source(name))
    assert report.ok, report.message
    assert report.status == "ok" and report.example is None
    assert report.n_examples == 12
    assert report.elapsed_s < 10.0
    assert report.hooks


def test_a_valid_stateless_mechanism_passes() -> None:
    report = check_conformance(GOOD_STATELESS, max_examples=6)
    assert report.ok, report.message
    assert report.hooks == ("propose", "review")


def test_proposal_outside_the_space() -> None:
    report = check_conformance(OUTSIDE)
    assert not report.ok
    assert report.status == Status.CONTRACT_VIOLATION.value
    assert "propose must return None or a valid config" in report.message
    assert_example(report, "propose")
    assert report.example is not None and report.example["value"] is not None
    assert report.example["history"] == []  # shrunk (or found) with no history at all


@pytest.mark.parametrize("source", [GLOBAL_COUNTER, STATE_IN_PROPOSE, HIDDEN_ENTROPY],
                         ids=["global-counter", "state-in-propose", "hidden-entropy"])
def test_nondeterminism_is_caught(source: str) -> None:
    report = check_conformance(source)
    assert not report.ok
    assert report.status == Status.CONTRACT_VIOLATION.value
    assert "not deterministic" in report.message
    assert_example(report, "propose")
    assert report.example is not None
    assert set(report.example["value"]) == {"uninterrupted", "resumed"}


@pytest.mark.parametrize(("source", "status", "hook", "words"), [
    (RAISES, Status.CRASH, "guide", "ZeroDivisionError"),
    (RUNTIME_POLICY, Status.POLICY_VIOLATION, "guide", "format"),
    (MEMORY_HOG, Status.MEMORY, "guide", "MemoryError"),
    (BAD_GUIDANCE, Status.CONTRACT_VIOLATION, "guide", "unknown keys"),
    (BAD_REVIEW, Status.CONTRACT_VIOLATION, "review", "review must return"),
    (LOAD_CRASH, Status.CRASH, "load", "ZeroDivisionError"),
    (FUTURE_IMPORT, Status.POLICY_VIOLATION, "load", "__future__"),
], ids=["raises", "runtime-policy", "memory", "bad-guidance", "bad-review", "load-crash", "future-import"])
def test_faults_fail_with_their_status(source: str, status: Status, hook: str, words: str) -> None:
    report = check_conformance(source, max_examples=4)
    assert not report.ok
    assert report.status == status.value, report.message
    assert words in report.message
    assert_example(report, hook)


def test_timeout() -> None:
    report = check_conformance(LOOPS, max_examples=2, limits=Limits(call_timeout_s=0.3))
    assert report.status == Status.TIMEOUT.value
    assert_example(report, "guide")
    assert report.elapsed_s < 5.0


@pytest.mark.parametrize(("source", "status"), [
    ("def guide(ctx, state)\n    return None\n", Status.COMPILE_ERROR),
    ("def guide(ctx, state):\n    _x = 1\n    return None\n", Status.POLICY_VIOLATION),
    ("class A:\n    pass\n\ndef guide(ctx, state):\n    return None\n", Status.POLICY_VIOLATION),
    ("X = 1\n", Status.CONTRACT_VIOLATION),
])
def test_compile_failures_are_reported_without_running(source: str, status: Status) -> None:
    report = check_conformance(source)
    assert not report.ok
    assert report.status == status.value
    assert report.n_examples == 0 and report.example is None and report.message


def test_the_check_is_reproducible() -> None:
    a = check_conformance(GLOBAL_COUNTER).to_json()
    b = check_conformance(GLOBAL_COUNTER).to_json()
    for report in (a, b):
        report.pop("elapsed_s")
        timings = report.pop("timings")  # wall-clock times; the number of calls is reproducible
        report["calls"] = timings["calls"]
    assert a == b


@settings(max_examples=40, deadline=None, database=None)
@given(examples())
def test_generated_examples_are_valid_contexts(example: Example) -> None:
    space = Space.from_json(example.space)
    assert 1 <= len(space.params) <= 6
    space.validate(example.candidate)
    best = None
    for t, trial in enumerate(example.history):
        assert trial["index"] == t
        space.validate(trial["config"])
        assert trial["kept"] == (trial["score"] is not None and (best is None or trial["score"] < best))
        if trial["kept"]:
            best = trial["score"]
    assert example.budget > len(example.history)
    json.dumps(example.to_json(), allow_nan=False)


def test_generated_spaces_cover_every_kind() -> None:
    kinds: set[str] = set()

    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        ex = data.draw(examples())
        kinds.update(p["type"] + ("-log" if p.get("log") else "") for p in ex.space["params"])

    collect()
    assert kinds >= {"float", "float-log", "int", "int-log", "categorical", "simplex"}


SLOW = '''
def propose(ctx, state):
    n = 0
    for i in range(150000):
        n += i
    return None
'''


def test_the_check_has_an_overall_deadline_no_reload_resets() -> None:
    """Each call stays under its own timeout, but the examples together outlast the per-run budget:
    the check fails with TIMEOUT at that budget instead of granting every example a fresh one (issue 11)."""
    limits = Limits(call_timeout_s=5.0, run_timeout_s=1.5)
    report = check_conformance(SLOW, max_examples=200, limits=limits)
    assert not report.ok and report.status == Status.TIMEOUT.value, report
    assert "overall deadline" in report.message or "run budget" in report.message, report.message
    assert report.elapsed_s < limits.run_timeout_s + limits.call_timeout_s + 10.0, report.elapsed_s
