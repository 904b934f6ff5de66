"""Blame that holds (issue 11): who failed reaches the evaluation result, and a stall between requests is
charged to the mechanism whose code ran last, not to nobody."""

from __future__ import annotations

import sys
import textwrap
from typing import Any

import pytest
from sphere_objective import Sphere

import bilevel.sandbox.session as session_module
from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.records import InnerResult
from bilevel.judge.benchmarks.base import Instance, RunScore
from bilevel.judge.evaluate import EvalResult, summarise_run
from bilevel.sandbox import Limits, SandboxSession, Status
from bilevel.sandbox.session import ROOT

LOAD_FAILS = "x = 1 / 0\n\ndef propose(ctx, state):\n    return None\n"
VIOLATES = "def propose(ctx, state):\n    import os\n    return None\n"
INNOCENT = "def guide(ctx, state):\n    return {}\n"


class _Score:
    """The part of a benchmark ``summarise_run`` uses."""

    def score(self, instance: Instance, result: InnerResult) -> RunScore:
        return RunScore(min(result.best_so_far))


def test_load_failures_and_disabled_mechanisms_reach_the_evaluation_result() -> None:
    stack = [("broken", LOAD_FAILS), ("attacker", VIOLATES), ("innocent", INNOCENT)]
    result = run_inner(Sphere(), stack, InnerSettings(budget=3), seed=1)
    by_mech = {f["mechanism"]: f for f in result.mechanism_faults}
    assert set(by_mech) == {"broken", "attacker"}
    assert by_mech["broken"]["hook"] == "load" and by_mech["broken"]["status"] == Status.CRASH.value
    assert "ZeroDivisionError" in by_mech["broken"]["message"]
    assert by_mech["attacker"]["hook"] == "disabled" and by_mech["attacker"]["status"] == "policy_violation"
    assert InnerResult.from_json(result.to_json()) == result
    ev = summarise_run(Instance("i1", "g1", {}), 1, result, _Score(), 0.1)  # type: ignore[arg-type]
    named = {(f["mechanism"], f["hook"]) for f in ev.faults}
    assert {("broken", "load"), ("attacker", "disabled")} <= named and not any(m == "innocent" for m, _ in named)
    assert EvalResult.from_json(ev.to_json()).faults == ev.faults


STALLING_CHILD = textwrap.dedent('''
    import json, os, sys, time
    sys.path.insert(0, ROOT)
    from bilevel.sandbox import worker
    from bilevel.sandbox.channel import make_signer

    def stalling_child(proto_in, proto_out, req, seccomp, server):
        sign = make_signer(bytes.fromhex(req["key"]))
        def out(obj):
            os.write(proto_out, sign(json.dumps(obj).encode()))
        out({"ready": True, "layers": ["fake"], "pid": os.getpid()})
        calls = 0
        for line in os.fdopen(proto_in, "rb"):
            req = json.loads(line)
            if req["op"] == "call":
                calls += 1
                if calls == 2:   # as if code left behind by the first call ran now, between requests
                    time.sleep(60)
            out({"ack": True})
            for mid in req.get("mechs") or [m[0] for m in req.get("mechanisms", [])]:
                value = {"hooks": ["propose"]} if req["op"] == "load" else None
                out({"exit": mid, "outcome": {"status": "ok", "value": value}})
            out({"done": True, "cpu_s": 0.0})

    worker.child_main = stalling_child
    worker.main()
''')


def test_a_stall_between_requests_is_charged_to_the_mechanism_that_ran_last(monkeypatch: pytest.MonkeyPatch) -> None:
    script = STALLING_CHILD.replace("ROOT", repr(ROOT))
    monkeypatch.setattr(session_module, "worker_command", lambda root=ROOT: [sys.executable, "-c", script])
    space: dict[str, Any] = {"params": [{"name": "x", "type": "float", "low": 0.0, "high": 1.0, "log": False}]}
    propose = "def propose(ctx, state):\n    return None\n"
    with SandboxSession([("a", propose), ("b", propose)], space, seed=1, budget=4,
                        limits=Limits(call_timeout_s=0.5)) as s:
        assert all(o.ok for o in s.start().values())
        assert s.call("a", "propose", 0, {}).ok
        out = s.call("b", "propose", 0, {})       # the worker does not acknowledge: a ran last in it
        blamed = s.disabled_reason("a")
        assert blamed is not None and blamed.status is Status.TIMEOUT and "between requests" in blamed.message
        assert s.disabled_reason("b") is None and out.ok   # b's call went to a fresh worker
