"""The worker's hook execution: what it does for each request, and the message shapes.

Protocol: one JSON object per line each way. Requests (``op``): ``load``,
``call``, ``observe``, ``replay``, ``reset``. The worker acknowledges each
request (``{"ack": true}``) before it runs any mechanism code. For every hook
call (or load) the worker writes ``{"exit": mech_id, "outcome": {...}}`` as
soon as it finishes, then ``{"done": true, "cpu_s": ...}`` at the end of the
request, so the host can time each call and blame the right mechanism when
one hangs. :class:`Worker` serves it; ``sandbox.worker`` starts it.
"""

from __future__ import annotations

import gc
import hashlib
import json
import linecache
import marshal
import os
import random
import resource
import time
from dataclasses import dataclass, field
from types import CodeType, FunctionType
from typing import IO, Any

from bilevel.mechanisms.contract import HOOK_NAMES
from bilevel.sandbox import facades, policy
from bilevel.sandbox.hardening import _AUDIT, mechanism_mode
from bilevel.sandbox.outcome import Outcome, Status
from bilevel.sandbox.results import describe_exception, judge

HOOK_ARITY: dict[str, int] = {"guide": 2, "propose": 2, "review": 3, "observe": 3}
FULL_GC_EVERY = 32


def seed_for(seed: int, position: int, hook: str, trial_index: int) -> int:
    """The seed of a mechanism's ``random`` before one call (contract: run seed, position, hook, t)."""
    digest = hashlib.sha256(f"{seed}:{position}:{hook}:{trial_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def accepts(fn: FunctionType, n: int) -> bool:
    """Whether ``fn`` can be called with ``n`` positional arguments."""
    code = fn.__code__
    required = code.co_argcount - len(fn.__defaults__ or ())
    kw_required = code.co_kwonlyargcount - len(fn.__kwdefaults__ or {})
    varargs = bool(code.co_flags & 0x04)
    return kw_required == 0 and required <= n and (n <= code.co_argcount or varargs)


# --------------------------------------------------------------------------- the worker
@dataclass
class Mechanism:
    """One loaded mechanism: its hooks (functions over its own globals), state and random instance."""

    mech_id: str
    position: int
    rng: random.Random
    hooks: dict[str, FunctionType] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


class Worker:
    """Serves the protocol for one inner run at a time (``load`` starts a new one)."""

    def __init__(self, out_fd: int, max_value_bytes: int) -> None:
        self.out_fd = out_fd
        self.max_value_bytes = max_value_bytes
        self.mechs: dict[str, Mechanism] = {}
        self.space: dict[str, Any] = {"params": []}
        self.seed = 0
        self.budget = 0
        self.history: list[dict[str, Any]] = []
        self.incumbent: dict[str, Any] | None = None
        self.ctx_blob = b""
        self.ctx_stale = True
        self.calls = 0

    # -- io ---------------------------------------------------------------------
    def send(self, obj: dict[str, Any]) -> None:
        """Write one protocol line."""
        data = (json.dumps(obj, allow_nan=True, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            n = os.write(self.out_fd, view)
            view = view[n:]

    def send_exit(self, mech_id: str, outcome: Outcome) -> None:
        self.send({"exit": mech_id, "outcome": outcome.to_json()})

    def send_done(self, **extra: Any) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.send({"done": True, "cpu_s": usage.ru_utime + usage.ru_stime, **extra})

    def serve(self, reader: IO[bytes]) -> None:
        """Answer requests until the host closes the pipe."""
        while True:
            line = reader.readline()
            if not line:
                return
            self.send({"ack": True})
            try:
                self.handle(json.loads(line))
            except BaseException as exc:  # noqa: BLE001 - a worker bug must not desync the protocol
                self.send_done(error=describe_exception(exc))

    def handle(self, req: dict[str, Any]) -> None:
        """Dispatch one request."""
        op = req.get("op")
        handler = {"load": self.op_load, "call": self.op_call, "observe": self.op_observe,
                   "replay": self.op_replay, "reset": self.op_reset}.get(str(op))
        if handler is None:
            self.send_done(error=f"unknown op {op!r}")
            return
        handler(req)

    # -- ops --------------------------------------------------------------------
    def op_reset(self, req: dict[str, Any]) -> None:
        """Forget every mechanism and the history."""
        self.drop_all()
        self.send_done()

    def op_load(self, req: dict[str, Any]) -> None:
        """Start a new inner run: fresh globals and state for each mechanism, empty history."""
        self.drop_all()
        self.space = req["space"]
        self.seed = int(req["seed"])
        self.budget = int(req["budget"])
        self.max_value_bytes = int(req.get("max_value_bytes", self.max_value_bytes))
        self.ctx_stale = True
        for mech_id, position, source in req["mechanisms"]:
            self.send_exit(mech_id, self.load_one(str(mech_id), int(position), source))
        self.send_done()

    def op_call(self, req: dict[str, Any]) -> None:
        """Call ``guide``, ``propose`` or ``review`` on each listed mechanism, in order."""
        hook = str(req["hook"])
        t = int(req["trial_index"])
        guidance = {} if hook == "guide" else (req.get("guidance") or {})
        for mech_id in req["mechs"]:
            m = self.mechs.get(mech_id)
            if m is None or hook not in m.hooks or hook == "observe":
                self.send_exit(mech_id, Outcome(Status.CRASH, message=f"{mech_id} has no {hook} loaded", layer="host"))
                continue
            args: tuple[Any, ...] = (self.ctx(t, guidance), m.state)
            if hook == "review":
                args += (fresh(req.get("candidate")),)
            self.send_exit(mech_id, self.invoke(m, hook, t, args, check=True))
        self.send_done()

    def op_observe(self, req: dict[str, Any]) -> None:
        """Record a finished trial, then call ``observe`` on each listed mechanism."""
        trial = req["trial"]
        self.record(trial)
        for mech_id in req["mechs"]:
            self.send_exit(mech_id, self.observe_one(mech_id, trial))
        self.send_done()

    def op_replay(self, req: dict[str, Any]) -> None:
        """Rebuild state after a restart: record and observe each trial of the history in turn."""
        for trial in req["trials"]:
            self.record(trial)
            for mech_id in req["mechs"]:
                outcome = self.observe_one(mech_id, trial)
                self.send_exit(mech_id, Outcome(outcome.status, elapsed_s=outcome.elapsed_s))
        self.send_done()

    # -- mechanisms -------------------------------------------------------------
    def load_one(self, mech_id: str, position: int, source: str) -> Outcome:
        """Compile and execute one mechanism into fresh globals; find its hooks."""
        filename = f"<mechanism {mech_id}>"
        code, outcome = policy.compile_source(source, filename)
        if code is None:
            return outcome
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        m = Mechanism(mech_id, position, random.Random())
        glb = policy.restricted_globals(facades.build_modules(m.rng))
        m.rng.seed(seed_for(self.seed, position, "load", -1))
        outcome = self.run(lambda: exec(code, glb), check=False, code=code)
        if not outcome.ok:
            return outcome
        return self.adopt(m, glb, outcome.elapsed_s)

    def adopt(self, m: Mechanism, glb: dict[str, Any], elapsed: float) -> Outcome:
        """Keep a loaded mechanism if its hooks are sound."""
        for name in HOOK_NAMES:
            fn = glb.get(name)
            if isinstance(fn, FunctionType) and fn.__globals__ is glb:
                if not accepts(fn, HOOK_ARITY[name]):
                    return Outcome(Status.CONTRACT_VIOLATION, elapsed_s=elapsed, layer="host",
                                   message=f"{name} must accept {HOOK_ARITY[name]} positional arguments")
                m.hooks[name] = fn
        if not m.hooks:
            return Outcome(Status.CONTRACT_VIOLATION, elapsed_s=elapsed, layer="host",
                           message=f"defines none of the hooks {', '.join(HOOK_NAMES)}")
        self.mechs[m.mech_id] = m
        return Outcome(Status.OK, value={"hooks": list(m.hooks)}, elapsed_s=elapsed)

    def observe_one(self, mech_id: str, trial: dict[str, Any]) -> Outcome:
        m = self.mechs.get(mech_id)
        if m is None or "observe" not in m.hooks:
            return Outcome(Status.CRASH, message=f"{mech_id} has no observe loaded", layer="host")
        t = int(trial.get("index", len(self.history) - 1))
        return self.invoke(m, "observe", t, (self.ctx(t, {}), m.state, fresh(trial)), check=False)

    def invoke(self, m: Mechanism, hook: str, t: int, args: tuple[Any, ...], check: bool) -> Outcome:
        """Re-seed the mechanism's random, call one hook, judge the result."""
        m.rng.seed(seed_for(self.seed, m.position, hook, t))
        fn = m.hooks[hook]
        return self.run(lambda: fn(*args), check=check)

    def run(self, thunk: Any, check: bool, code: CodeType | None = None) -> Outcome:
        """Run mechanism code in mechanism mode and judge what came out."""
        policy.take_violations()
        value: Any = None
        error: BaseException | None = None
        _AUDIT.exec_code = code
        start = time.perf_counter()
        with mechanism_mode():
            try:
                value = thunk()
            except BaseException as exc:  # noqa: BLE001 - mechanism faults are data
                error = exc
        elapsed = time.perf_counter() - start
        _AUDIT.exec_code = None
        outcome = judge(value, error, elapsed, check, self.max_value_bytes)
        del value, error
        self.collect()
        return outcome

    def collect(self) -> None:
        """Collect garbage in mechanism mode, so mechanism finalizers never run with worker rights."""
        self.calls += 1
        with mechanism_mode():
            try:
                gc.collect(2 if self.calls % FULL_GC_EVERY == 0 else 0)
            except BaseException:  # noqa: BLE001
                pass
        policy.take_violations()

    def drop_all(self) -> None:
        """Forget mechanisms (their globals, state and source lines) and the history."""
        for mech_id in list(self.mechs):
            linecache.cache.pop(f"<mechanism {mech_id}>", None)
        self.mechs.clear()
        self.history = []
        self.incumbent = None
        self.calls = FULL_GC_EVERY - 1
        self.collect()
        self.ctx_stale = True

    # -- ctx --------------------------------------------------------------------
    def record(self, trial: dict[str, Any]) -> None:
        """Append a finished trial to the history; it becomes the incumbent if kept."""
        self.history.append(trial)
        if trial.get("kept"):
            self.incumbent = trial
        self.ctx_stale = True

    def ctx(self, t: int, guidance: dict[str, Any]) -> dict[str, Any]:
        """A fresh ctx (per the contract) for one call; mechanisms may mutate it freely."""
        if self.ctx_stale:
            self.ctx_blob = marshal.dumps({"space": self.space, "history": self.history,
                                           "incumbent": self.incumbent, "budget": self.budget})
            self.ctx_stale = False
        ctx: dict[str, Any] = marshal.loads(self.ctx_blob)
        ctx["trial_index"] = t
        ctx["guidance"] = fresh(guidance)
        return ctx


def fresh(value: Any) -> Any:
    """A deep copy of plain data."""
    return marshal.loads(marshal.dumps(value))


