"""The sandbox session and its worker process (layers 2 and 3), tested with real workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from proc_helpers import process_gone, worker_children

import bilevel.sandbox.session as session_module
from bilevel.sandbox import Limits, Outcome, SandboxSession, Status
from bilevel.sandbox.session import ROOT
from bilevel.sandbox.worker import WARMUP_SOURCE

SPACE: dict[str, Any] = {"params": [
    {"name": "x", "type": "float", "low": 0.0, "high": 1.0, "log": False},
    {"name": "n", "type": "int", "low": 1, "high": 64, "log": True},
    {"name": "c", "type": "categorical", "choices": ["a", "b", "c"]},
]}

TABU = textwrap.dedent('''
    import random
    import spacekit

    def guide(ctx, state):
        return None

    def observe(ctx, state, trial):
        seen = state.setdefault("seen", [])
        seen.append(spacekit.key(ctx["space"], trial["config"]))

    def propose(ctx, state):
        space = ctx["space"]
        seen = state.get("seen", [])
        for attempt in range(100):
            config = spacekit.decode(space, [random.random() for d in range(spacekit.dims(space))])
            if spacekit.key(space, config) not in seen:
                return config
        return None

    def review(ctx, state, candidate):
        if spacekit.key(ctx["space"], candidate) in state.get("seen", []):
            return "tabu"
        return None
''')

ECHO = textwrap.dedent('''
    import spacekit

    def guide(ctx, state):
        return {"focus": [spacekit.names(ctx["space"])[0]]}

    def propose(ctx, state):
        ctx["history"].append("junk")
        inc = ctx["incumbent"]
        return {"t": ctx["trial_index"], "n": len(ctx["history"]) - 1, "budget": ctx["budget"],
                "inc": None if inc is None else inc["index"], "guidance": ctx["guidance"],
                "order": list(set(spacekit.names(ctx["space"]) + ["p", "q", "r", "s"]))}
''')

COUNTER = textwrap.dedent('''
    CALLS = [0]

    def observe(ctx, state, trial):
        state["n"] = state.get("n", 0) + 1

    def propose(ctx, state):
        CALLS[0] = CALLS[0] + 1
        return {"calls": CALLS[0], "observed": state.get("n", 0)}
''')


def hook(body: str, name: str = "propose") -> str:
    args = {"propose": "ctx, state", "guide": "ctx, state", "review": "ctx, state, candidate",
            "observe": "ctx, state, trial"}[name]
    return f"def {name}({args}):\n" + textwrap.indent(textwrap.dedent(body), "    ") + "\n"


def trial(index: int, config: Any, score: float = 1.0, kept: bool = True) -> dict[str, Any]:
    return {"index": index, "config": config, "score": score, "kept": kept, "source": "test"}


def drive(session: SandboxSession, mech_id: str, start: int, stop: int) -> list[Any]:
    """Propose with ``mech_id`` and observe each proposal, for trials ``start..stop-1``."""
    proposals = []
    for t in range(start, stop):
        out = session.call(mech_id, "propose", t, {})
        assert out.ok, out
        proposals.append(out.value)
        session.observe(trial(t, out.value, score=float(t % 3)))
    return proposals




# --------------------------------------------------------------------------- working mechanisms
def test_working_mechanisms_see_ctx_and_answer_in_stack_order() -> None:
    with SandboxSession([("tabu", TABU), ("echo", ECHO), ("warm", WARMUP_SOURCE)], SPACE, seed=3,
                        budget=20) as s:
        loaded = s.start()
        assert list(loaded) == ["tabu", "echo", "warm"] and all(o.ok for o in loaded.values()), loaded
        assert loaded["tabu"].value == {"hooks": ["guide", "propose", "review", "observe"]}
        assert s.active == ["tabu", "echo", "warm"] and s.hooks("echo") == ("guide", "propose")
        assert {"policy", "rlimit", "audit", "timeout"} <= set(s.layers)
        seen = []
        for t in range(4):
            guides = s.guide_all(t)
            assert list(guides) == ["tabu", "echo"]
            assert guides["tabu"].value is None and guides["echo"].value == {"focus": ["x"]}
            echo = s.call("echo", "propose", t, {"step_scale": 2.0}).value
            assert echo["t"] == t and echo["n"] == t and echo["budget"] == 20
            assert echo["guidance"] == {"step_scale": 2.0}
            assert echo["inc"] == (None if t == 0 else t - 1)
            config = s.call("tabu", "propose", t, {}).value
            assert set(config) == {"x", "n", "c"} and config not in seen
            assert s.call("tabu", "review", t, {}, config).value is None
            observed = s.observe(trial(t, config))
            assert list(observed) == ["tabu"] and observed["tabu"].ok
            assert s.call("tabu", "review", t, {}, config).value == "tabu"
            seen.append(config)
        assert s.call("warm", "propose", 4, {}).ok   # every facade works under the armed audit hook


def test_same_seed_gives_same_proposals_in_different_workers() -> None:
    def proposals(seed: int) -> tuple[list[Any], list[str]]:
        with SandboxSession([("tabu", TABU), ("echo", ECHO)], SPACE, seed=seed, budget=10) as s:
            s.start()
            order = s.call("echo", "propose", 0, {}).value["order"]
            return drive(s, "tabu", 0, 4), order

    first, order1 = proposals(7)
    second, order2 = proposals(7)
    assert first == second
    assert order1 == order2          # set iteration order too: str hashing is fixed in every worker
    assert proposals(8)[0] != first


def test_reload_forks_a_fresh_worker_from_the_same_server() -> None:
    with SandboxSession([("counter", COUNTER)], SPACE, seed=1, budget=5) as s:
        s.start()
        pid, server = s.worker_pid, s.server_pid
        s.observe(trial(0, {"x": 0.5}))
        assert s.call("counter", "propose", 1, {}).value == {"calls": 1, "observed": 1}
        assert s.call("counter", "propose", 1, {}).value == {"calls": 2, "observed": 1}
        again = s.reload([("counter", COUNTER), ("tabu", TABU)], seed=2, budget=5)
        assert all(o.ok for o in again.values())
        assert s.worker_pid != pid and process_gone(pid)   # a clean worker for every inner run ...
        assert s.server_pid == server                       # ... forked from the same pre-imported parent
        assert s.call("counter", "propose", 0, {}).value == {"calls": 1, "observed": 0}


# --------------------------------------------------------------------------- faults
def test_infinite_loop_times_out_and_the_session_carries_on() -> None:
    limits = Limits(call_timeout_s=0.5)
    with SandboxSession([("counter", COUNTER), ("hang", hook("while True:\n    pass"))], SPACE, seed=1,
                        budget=5, limits=limits) as s:
        s.start()
        pid = s.worker_pid
        s.observe(trial(0, {"x": 0.1}))
        s.observe(trial(1, {"x": 0.2}))
        started = time.monotonic()
        out = s.call("hang", "propose", 2, {})
        took = time.monotonic() - started
        assert out.status is Status.TIMEOUT and out.layer == "timeout"
        assert 0.5 <= took < 2.5
        assert s.active == ["counter"] and s.worker_pid != pid
        assert process_gone(pid)
        # state rebuilt by replay; module globals are fresh in the new worker
        assert s.call("counter", "propose", 2, {}).value == {"calls": 1, "observed": 2}
        assert s.call("hang", "propose", 3, {}).status is Status.TIMEOUT


def test_run_budget_exhaustion_is_a_timeout_for_every_later_call() -> None:
    limits = Limits(call_timeout_s=5.0, run_timeout_s=0.4)
    with SandboxSession([("hang", hook("while True:\n    pass"))], SPACE, seed=1, budget=5, limits=limits) as s:
        s.start()
        started = time.monotonic()
        out = s.call("hang", "propose", 0, {})
        assert out.status is Status.TIMEOUT and "run budget" in out.message
        assert time.monotonic() - started < 2.5
        assert s.active == []
        assert s.call("hang", "propose", 1, {}).status is Status.TIMEOUT


def test_memory_bombs_are_memory_faults() -> None:
    mechs = [("str", hook('return "a" * 10**10')), ("list", hook("return [0] * 10**10")),
             ("numpy", "import numpy as np\n" + hook("return np.zeros(10**10).tolist()"))]
    with SandboxSession(mechs, SPACE, seed=1, budget=5) as s:
        s.start()
        pid = s.worker_pid
        for mid, _ in mechs:
            out = s.call(mid, "propose", 0, {})
            assert out.status is Status.MEMORY and out.layer == "rlimit", out
            assert "MemoryError" in out.message
        assert s.worker_pid == pid        # caught in the worker: no restart needed


def test_an_exception_is_a_crash_with_its_traceback() -> None:
    source = hook('value = ctx["trial_index"]\nraise ValueError("boom at " + str(value))')
    with SandboxSession([("bad", source)], SPACE, seed=1, budget=5) as s:
        s.start()
        out = s.call("bad", "propose", 4, {})
        assert out.status is Status.CRASH
        assert out.message == "ValueError: boom at 4"
        assert 'raise ValueError("boom at " + str(value))' in out.traceback
        assert "<mechanism bad>" in out.traceback and "sandbox/worker.py" not in out.traceback
        assert s.fault_count("bad") == 1 and s.active == ["bad"]
        s.call("bad", "propose", 5, {})
        s.call("bad", "propose", 6, {})
        assert s.active == [] and s.disabled_reason("bad") is not None
        assert s.call("bad", "propose", 7, {}).status is Status.CRASH


def test_worker_text_is_always_valid_unicode() -> None:
    with SandboxSession([("bad", hook("raise ValueError(chr(0xD800) + 'x')"))], SPACE, seed=1, budget=5) as s:
        s.start()
        out = s.call("bad", "propose", 0, {})
        assert out.status is Status.CRASH and "\\ud800x" in out.message
        out.message.encode("utf-8")
        out.traceback.encode("utf-8")


def test_recursion_is_a_crash() -> None:
    source = "def down(n):\n    return down(n + 1)\n" + hook("return down(0)")
    with SandboxSession([("rec", source)], SPACE, seed=1, budget=5) as s:
        s.start()
        out = s.call("rec", "propose", 0, {})
        assert out.status is Status.CRASH and "RecursionError" in out.message


@pytest.mark.parametrize(("body", "needle"), [
    ("return {1, 2}", "set"),
    ("return list(range(10**6))", "too many"),
    ("return {1: 2}", "key"),
    ("return [spacekit.dims]", "function"),
    ('return "x" * 2_000_000', "bytes"),
    ("return {'reason': chr(0xD800)}", "Unicode"),
])
def test_non_plain_or_huge_values_are_contract_violations(body: str, needle: str) -> None:
    with SandboxSession([("m", "import spacekit\n" + hook(body))], SPACE, seed=1, budget=5) as s:
        s.start()
        out = s.call("m", "propose", 0, {})
        assert out.status is Status.CONTRACT_VIOLATION and needle in out.message, out


def test_opening_a_file_fails_by_every_route(tmp_path: Path) -> None:
    target = tmp_path / "x"
    routes = {
        "open": hook(f"open({str(target)!r}, 'w').write('x')"),
        "io": hook(f"import io\nio.open({str(target)!r}, 'w')"),
        "os": hook(f"import os\nos.open({str(target)!r}, 1)"),
        "npsave": "import numpy as np\n" + hook(f"np.save({str(target)!r}, np.zeros(2))"),
        "tofile": "import numpy as np\n" + hook(f"np.zeros(2).tofile({str(target)!r})"),
        "fromimport": hook(f"from numpy import save\nsave({str(target)!r}, [1])"),
        "format": hook("return '{0.__globals__}'.format(spacekit.key)"),
    }
    with SandboxSession(list(routes.items()), SPACE, seed=1, budget=5) as s:
        loaded = s.start()
        for mid in routes:
            status = loaded[mid].status if not loaded[mid].ok else s.call(mid, "propose", 0, {}).status
            assert status is Status.POLICY_VIOLATION, (mid, status)
    assert not target.exists() and not list(tmp_path.iterdir())


def test_close_reaps_every_process_and_directory() -> None:
    s = SandboxSession([("tabu", TABU)], SPACE, seed=1, budget=5, limits=Limits(call_timeout_s=0.5))
    s.start()
    first = s.worker_pid
    assert first is not None
    tmpdir = s._worker.tmpdir if s._worker else ""
    os.killpg(first, signal.SIGKILL)           # a worker that dies between calls ...
    assert s.call("tabu", "propose", 0, {}).ok  # ... is replaced transparently
    second = s.worker_pid
    assert second != first and process_gone(first) and not Path(tmpdir).exists()
    s.close()
    s.close()                                   # idempotent
    assert second is not None and process_gone(second)
    assert worker_children() == []


def test_replay_after_a_worker_crash_matches_an_uninterrupted_run() -> None:
    limits = Limits(call_timeout_s=0.5)
    with SandboxSession([("tabu", TABU)], SPACE, seed=11, budget=10, limits=limits) as plain:
        plain.start()
        expected = drive(plain, "tabu", 0, 6)
    hang = hook("if ctx['trial_index'] == 3:\n    while True:\n        pass\nreturn None")
    with SandboxSession([("tabu", TABU), ("hang", hang)], SPACE, seed=11, budget=10, limits=limits) as s:
        s.start()
        got = drive(s, "tabu", 0, 2)
        os.killpg(s.worker_pid or 0, signal.SIGKILL)    # crash between calls
        got += drive(s, "tabu", 2, 3)
        assert s.call("hang", "propose", 3, {}).status is Status.TIMEOUT    # crash during a call
        got += drive(s, "tabu", 3, 6)
    assert got == expected


# --------------------------------------------------------------------------- the host never trusts the worker
FAKE_WORKER = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, ROOT)
    from bilevel.sandbox import worker
    from bilevel.sandbox.channel import make_signer

    def fake_child(proto_in, proto_out, req, seccomp, server):
        sign = make_signer(bytes.fromhex(req["key"]))
        def raw(data):
            while data:
                data = data[os.write(proto_out, data):]
        def out(obj):
            raw(sign(json.dumps(obj).encode()))
        out({"ready": True, "layers": ["fake"], "pid": 0})
        for line in os.fdopen(proto_in, "rb"):
            req = json.loads(line)
            if req["op"] == "load":
                out({"ack": True})
                for mid, pos, src in req["mechanisms"]:
                    out({"exit": mid, "outcome": {"status": "ok", "value": {"hooks": ["propose"]}}})
                out({"done": True, "cpu_s": 0.0})
                continue
            out({"ack": True})
            if MODE == "garbage":
                raw(sign(b"this is not json"))
            elif MODE == "forged":   # a well-formed line without the key's tag
                raw(json.dumps({"exit": req["mechs"][0], "outcome": {"status": "ok", "value": 1}}).encode() + b"\\n")
            elif MODE == "oversized":
                raw(b"x" * (3 << 20))
            elif MODE == "wrong_id":
                out({"exit": "someone-else", "outcome": {"status": "ok"}})
            elif MODE == "bad_status":
                out({"exit": req["mechs"][0], "outcome": {"status": "pwned"}})
            elif MODE == "exit":
                os._exit(3)

    worker.child_main = fake_child
    worker.main()
''')


@pytest.mark.parametrize("mode", ["garbage", "forged", "oversized", "wrong_id", "bad_status", "exit"])
def test_malformed_worker_output_is_a_crash_not_an_exception(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    script = FAKE_WORKER.replace("MODE", repr(mode)).replace("ROOT", repr(ROOT))
    monkeypatch.setattr(session_module, "worker_command", lambda root=ROOT: [sys.executable, "-c", script])
    with SandboxSession([("m", hook("return 1"))], SPACE, seed=1, budget=5, limits=Limits(max_value_bytes=4096)) as s:
        assert s.start()["m"].ok and s.layers == ("fake",)
        out = s.call("m", "propose", 0, {})
        assert out.status is Status.CRASH and out.layer == "host", out
        assert s.worker_pid is None                # the worker was killed, to be restarted on demand
        assert s.call("m", "propose", 1, {}).status is Status.CRASH


# --------------------------------------------------------------------------- layer 2 on its own
AUDIT_PROBE = textwrap.dedent('''
    import ctypes, json, os, socket, subprocess, sys
    sys.path.insert(0, ROOT)
    from bilevel.sandbox import worker
    out = os.dup(1)
    layers = worker.harden({"memory_bytes": 1 << 30, "cpu_s": 60, "file_size_bytes": 0, "open_files": 64})
    results = {"layers": layers}
    def attempt(name, fn):
        try:
            fn()
            results[name] = "allowed"
        except BaseException as exc:
            results[name] = type(exc).__name__
    def fork():
        if os.fork() == 0:
            os._exit(0)
    attempt("open_write", lambda: open(TARGET, "w"))
    attempt("open_read", lambda: open("/etc/hostname"))
    attempt("socket", lambda: socket.socket())
    attempt("subprocess", lambda: subprocess.Popen(["true"]))
    attempt("system", lambda: os.system("true"))
    attempt("fork", fork)
    attempt("kill", lambda: os.kill(os.getppid(), 0))
    attempt("ctypes", lambda: ctypes.CDLL(None))
    attempt("import", lambda: __import__("xml.dom.minidom"))
    attempt("memory", lambda: bytearray(3 << 30))
    os.write(out, json.dumps(results).encode())
''')


def test_the_audit_and_rlimit_layers_hold_for_unrestricted_code(tmp_path: Path) -> None:
    """As if RestrictedPython had failed: plain Python in a hardened process still cannot act."""
    target = tmp_path / "x"
    script = AUDIT_PROBE.replace("ROOT", repr(ROOT)).replace("TARGET", repr(str(target)))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, cwd=tmp_path,
                          env={"OPENBLAS_NUM_THREADS": "1"}, start_new_session=True)
    results = json.loads(done.stdout)
    assert {"rlimit", "audit"} <= set(results.pop("layers"))
    assert results.pop("memory") == "MemoryError"
    assert results == {name: "PolicyViolation" for name in results}, results
    assert not target.exists()


def test_outcomes_round_trip_as_json() -> None:
    out = Outcome(Status.TIMEOUT, message="m", layer="timeout", elapsed_s=0.5)
    assert Outcome.from_json(json.loads(json.dumps(out.to_json()))) == out


def test_a_mechanism_that_hangs_in_observe_is_dropped_and_the_others_keep_their_state() -> None:
    hang = hook("if trial['index'] == 1:\n    while True:\n        pass", name="observe")
    limits = Limits(call_timeout_s=0.5)
    with SandboxSession([("hang", hang), ("counter", COUNTER)], SPACE, seed=1, budget=5, limits=limits) as s:
        s.start()
        assert all(o.ok for o in s.observe(trial(0, {"x": 0.1})).values())
        second = s.observe(trial(1, {"x": 0.2}))
        assert second["hang"].status is Status.TIMEOUT and second["counter"].ok
        assert s.active == ["counter"]
        assert s.call("counter", "propose", 2, {}).value == {"calls": 1, "observed": 2}


def test_only_the_failed_mechanism_is_dropped_when_it_was_the_last_one() -> None:
    hang = hook("while True:\n    pass", name="observe")
    with SandboxSession([("hang", hang)], SPACE, seed=1, budget=5, limits=Limits(call_timeout_s=0.3)) as s:
        s.start()
        assert s.observe(trial(0, {"x": 0.1}))["hang"].status is Status.TIMEOUT
        assert s.active == [] and s.worker_pid is None
        assert s.observe(trial(1, {"x": 0.2})) == {}
        assert s.guide_all(2) == {}
