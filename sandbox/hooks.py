"""The worker's hook execution: what it does for each request, and the message shapes.

Protocol: one JSON object per line each way. Requests (``op``): ``load``,
``call``, ``observe``, ``replay``, ``reset`` and ``step`` (several of those
calls in one exchange, see :meth:`Worker.op_step`). The worker acknowledges each
request (``{"ack": true}``) before it runs any mechanism code. For every hook
call (or load) the worker writes ``{"exit": mech_id, "outcome": {...}}`` as
soon as it finishes, then ``{"done": true, "cpu_s": ...}`` at the end of the
request, so the host can time each call and blame the right mechanism when
one hangs. :class:`Worker` serves it; ``sandbox.worker`` starts it.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import linecache
import marshal
import os
import random
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import CodeType, FunctionType
from typing import IO, Any

from bilevel.mechanisms import spacekit
from bilevel.mechanisms.contract import HOOK_NAMES, ContractError, check_guidance, merge_guidance
from bilevel.sandbox import facades, policy
from bilevel.sandbox.hardening import _AUDIT, mechanism_mode
from bilevel.sandbox.hookcode import accepts, compile_once, ctx_keys
from bilevel.sandbox.outcome import Outcome, Status
from bilevel.sandbox.plaincopy import (
    canonical_json,
    compact_json,
    copy_entries,
    copy_plan,
    fresh,
    state_snapshot,
)
from bilevel.sandbox.results import MESSAGE_CAP, cap, describe_exception, judge

HOOK_ARITY: dict[str, int] = {"guide": 2, "propose": 2, "review": 3, "observe": 3}
COLLECT_ROUNDS = 8


def seed_for(seed: int, position: int, hook: str, trial_index: int) -> int:
    """The seed of a mechanism's ``random`` before one call (contract: run seed, position, hook, t)."""
    digest = hashlib.sha256(f"{seed}:{position}:{hook}:{trial_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


# --------------------------------------------------------------------------- the worker
@dataclass
class Mechanism:
    """One loaded mechanism: its hooks (functions over its own globals), state and random instance."""

    mech_id: str
    position: int
    rng: random.Random
    hooks: dict[str, FunctionType] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    ctx_keys: dict[str, frozenset[str] | None] = field(default_factory=dict)  # per hook (sandbox.hookcode)


class Worker:
    """Serves the protocol for one inner run at a time (``load`` starts a new one)."""

    def __init__(self, out_fd: int, max_value_bytes: int, sign: Callable[[bytes], bytes] | None = None) -> None:
        self.out_fd = out_fd
        self._sign = sign
        self.max_value_bytes = max_value_bytes
        self.mechs: dict[str, Mechanism] = {}
        self.space: dict[str, Any] = {"params": []}
        self.seed = 0
        self.budget = 0
        self.history: list[dict[str, Any]] = []
        self.copies: list[tuple[str, ...] | bytes] = []  # how to copy each history entry (:func:`copy_plan`)
        self.incumbent: dict[str, Any] | None = None
        self.incumbent_at: int | None = None  # its position in the history
        self.space_blob = b""
        self.ctx_stale = True
        self.calls = 0
        self.step_parts: list[list[Any]] = []  # [mech_id, checked guidance] of this step's guides, in order

    # -- io ---------------------------------------------------------------------
    def send(self, obj: dict[str, Any]) -> None:
        """Write one protocol line (authenticated when the worker has a key, see ``sandbox.channel``)."""
        body = compact_json(obj).encode()
        data = self._sign(body) if self._sign is not None else body + b"\n"
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
                   "replay": self.op_replay, "reset": self.op_reset, "step": self.op_step}.get(str(op))
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
        """Call ``guide``, ``propose`` or ``review`` on each listed mechanism, in order.

        ``"dry": true`` (the host's counterfactual activation check): each mechanism's ``state`` is put
        back as it was before the call, so the call commits nothing there (module globals are the
        mechanism's own business: the contract keeps state in ``state``)."""
        hook = str(req["hook"])
        t = int(req["trial_index"])
        for mech_id in req["mechs"]:
            self.call_one(str(mech_id), hook, t, req.get("guidance") or {}, req.get("candidate"),
                          dry=bool(req.get("dry")))
        self.send_done()

    def op_step(self, req: dict[str, Any]) -> None:
        """Run the parts of one exchange in order, and stop where the host must decide before more runs.

        Parts (``req["parts"]``): ``["obs", trial, mechs]`` records a finished trial and observes it;
        ``["guide", t, mechs]``; ``["propose", t, mechs]`` with the guidance merged from this request's
        guide part (``sandbox.hooks`` uses the contract's own ``check_guidance`` and ``merge_guidance``,
        as the inner loop does); ``["review", t, mechs, guidance, candidate]``; ``["dry", t, calls]``
        with calls ``[mech_id, hook, guidance, candidate]`` whose ``state`` is restored afterwards;
        ``["spec", t, reviewers, alternatives]`` (:meth:`step_spec`) runs the reviews predicted by the
        host only where its prediction of this request's guidance holds exactly.
        The worker stops (sends ``done``) as soon as the next call could depend on something only the
        host decides: a fault, guidance the contract refuses or with a ``centre`` (checked against
        the host's space), a proposal (the host validates it), a rejection or a changed candidate
        before the last review, a guidance no alternative predicted. So every call it makes is one
        the host's step-by-step path would have made, in the same order and with the same inputs.
        """
        guidance: dict[str, Any] = {}
        self.step_parts = []
        outs: list[Outcome] | None
        for part in req["parts"]:
            kind = part[0]
            if kind == "obs":
                outs = self.step_observe(part[1], part[2])
            elif kind == "guide":
                outs, guidance = self.step_guides(int(part[1]), part[2])
            elif kind in ("propose", "review"):
                outs = self.step_chain(kind, int(part[1]), part[2], guidance if kind == "propose" else part[3],
                                       part[4] if kind == "review" else None)
            elif kind == "spec":
                outs = self.step_spec(int(part[1]), part[2], guidance, part[3])
            else:
                outs = self.step_dry(int(part[1]), part[2])
            if outs is None or not all(o.ok for o in outs):
                break
        self.send_done()

    def step_spec(self, t: int, reviewers: list[str], guidance: dict[str, Any],
                  alternatives: list[list[Any]]) -> list[Outcome] | None:
        """``["spec", t, reviewers, alternatives]``: the reviews (and dry calls) the host would make next if
        its prediction of this request's guidance holds. Reached only when every earlier part ran to its
        end (guides checked, no ``centre``, every propose hook answered None, so the host's base proposer
        proposes next). An alternative ``[parts, candidate, dry_calls]`` runs only where ``parts`` (the
        ``[mech_id, checked guidance]`` of each guide, in order) equals this request's exactly (canonical
        JSON): then ``candidate`` is what the host's base proposer returns for this guidance, and the
        reviews and dry calls are the ones the host makes next. Otherwise nothing runs (a misprediction)."""
        mine = canonical_json(self.step_parts)
        for parts, candidate, dry in alternatives:
            if canonical_json(parts) == mine:
                outs = self.step_chain("review", t, reviewers, guidance, candidate)
                if outs is None or not all(o.ok for o in outs) or not dry:
                    return outs
                return self.step_dry(t, dry)
        return None

    def step_observe(self, trial: dict[str, Any], mechs: list[str]) -> list[Outcome]:
        self.record(trial)
        outs = []
        for mech_id in mechs:
            outs.append(self.observe_one(mech_id, trial))
            self.send_exit(mech_id, outs[-1])
        return outs

    def step_guides(self, t: int, mechs: list[str]) -> tuple[list[Outcome] | None, dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        outs: list[Outcome] = []
        names = spacekit.names(self.space)
        for mech_id in mechs:
            out = self.call_one(mech_id, "guide", t, {}, None, dry=False)
            outs.append(out)
            if out.ok:
                try:
                    parts.append(check_guidance(json.loads(json.dumps(out.value)), names))
                except (ContractError, ValueError, TypeError):
                    return None, {}
                self.step_parts.append([mech_id, parts[-1]])
        if any("centre" in g for g in parts):
            return None, {}
        return outs, merge_guidance(parts)

    def step_chain(self, hook: str, t: int, mechs: list[str], guidance: dict[str, Any],
                   candidate: Any) -> list[Outcome] | None:
        outs: list[Outcome] = []
        for i, mech_id in enumerate(mechs):
            out = self.call_one(mech_id, hook, t, guidance, candidate, dry=False)
            outs.append(out)
            last_review = hook == "review" and i == len(mechs) - 1
            if not out.ok or (out.value is not None and not (last_review and isinstance(out.value, dict))):
                return None  # a fault, a proposal, a rejection or a changed candidate: the host decides
        # the last review's changed candidate ends the selection whatever the host makes of it: the dry
        # calls that follow are the host's next calls either way
        return outs

    def step_dry(self, t: int, calls: list[list[Any]]) -> list[Outcome]:
        outs: list[Outcome] = []
        for mech_id, hook, guidance, candidate in calls:
            out = self.call_one(str(mech_id), str(hook), t, guidance or {}, candidate, dry=True)
            outs.append(out)
            if not out.ok:
                break
        return outs

    def call_one(self, mech_id: str, hook: str, t: int, guidance: dict[str, Any], candidate: Any,
                 dry: bool) -> Outcome:
        """One guide, propose or review call (``op_call``'s body), its exit line sent."""
        m = self.mechs.get(mech_id)
        if m is None or hook not in m.hooks or hook == "observe":
            out = Outcome(Status.CRASH, message=f"{mech_id} has no {hook} loaded", layer="host")
            self.send_exit(mech_id, out)
            return out
        args: list[Any] = [self.ctx(t, guidance if hook != "guide" else {}, m.ctx_keys.get(hook)), m.state]
        if hook == "review":
            args.append(fresh(candidate))
        snapshot = state_snapshot(m.state) if dry else None
        out = self.invoke(m, hook, t, args, check=True)
        if snapshot is not None:
            m.state.clear()
            m.state.update(marshal.loads(snapshot))
        self.send_exit(mech_id, out)
        return out

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
        code, outcome = compile_once(source, filename)
        if code is None:
            return outcome
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        m = Mechanism(mech_id, position, random.Random())
        glb = policy.restricted_globals(facades.build_modules(m.rng))
        m.rng.seed(seed_for(self.seed, position, "load", -1))
        outcome = self.run(exec, [code, glb], check=False, code=code)
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
                m.ctx_keys[name] = ctx_keys(fn.__code__)
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
        return self.invoke(m, "observe", t, [self.ctx(t, {}, m.ctx_keys.get("observe")), m.state, fresh(trial)],
                           check=False)

    def invoke(self, m: Mechanism, hook: str, t: int, args: list[Any], check: bool) -> Outcome:
        """Re-seed the mechanism's random, call one hook, judge the result.

        ``args`` is emptied here: the caller keeps no reference to what the hook received, so
        everything the call created is freed inside its accounting (see :meth:`run`).
        """
        m.rng.seed(seed_for(self.seed, m.position, hook, t))
        return self.run(m.hooks[hook], args, check=check)

    def run(self, fn: Any, args: list[Any], check: bool, code: CodeType | None = None) -> Outcome:
        """Run mechanism code in mechanism mode and judge what came out.

        Everything the call leaves behind is dealt with before the outcome is final and inside
        the call's time: the value is checked and the traceback read (with worker rights, which
        run no mechanism code), then, back in mechanism mode, the traceback's frames are cleared,
        the value and error dropped and garbage collected until none is left, so finalisers (a
        generator's ``finally``) run now and are charged to this call. A violation recorded by
        any of that makes the outcome a POLICY_VIOLATION: a violation is never forgotten.
        """
        policy.take_violations()
        box: list[Any] = [None, None]  # value, error
        _AUDIT.exec_code = code
        start = time.perf_counter()
        with mechanism_mode():
            try:
                box[0] = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - mechanism faults are data
                box[1] = exc
            args.clear()
        _AUDIT.exec_code = None
        try:
            outcome = judge(box[0], box[1], 0.0, check, self.max_value_bytes)
            frames = _frames(box[1])
        except BaseException as exc:  # noqa: BLE001 - judging reads mechanism objects
            outcome = Outcome(Status.CRASH, message=f"cannot judge the result: {describe_exception(exc)}",
                              layer="host")
            frames = []
        with mechanism_mode():
            for frame in frames:
                with contextlib.suppress(BaseException):
                    frame.clear()
            frames.clear()
            box.clear()
            problem = self.collect()
        elapsed = time.perf_counter() - start
        late = policy.take_violations()
        if late and outcome.status is not Status.POLICY_VIOLATION:
            return Outcome(Status.POLICY_VIOLATION, message=cap(late[0].message, MESSAGE_CAP),
                           traceback=outcome.traceback, elapsed_s=elapsed, layer=late[0].layer)
        if problem and outcome.ok:
            return Outcome(Status.POLICY_VIOLATION, message=problem, elapsed_s=elapsed, layer="host")
        return Outcome(outcome.status, outcome.value, outcome.message, outcome.traceback, elapsed, outcome.layer)

    def collect(self) -> str:
        """Collect all garbage in mechanism mode until none is left (bounded); '' or what went wrong.

        Mechanism finalisers never run with worker rights, and deferred code that keeps scheduling
        more of itself is a violation of the mechanism whose call this is. What survives is frozen
        (``gc.freeze``): a cycle that becomes garbage later is never collected, so its finalisers never
        run at all (the worker lives for one inner run, under its memory limit).
        """
        self.calls += 1
        for _ in range(COLLECT_ROUNDS):
            try:
                if gc.collect() == 0:
                    gc.freeze()  # what is alive now is never scanned again: the next collection stays cheap
                    return ""
            except BaseException as exc:  # noqa: BLE001 - a finaliser raised
                return f"deferred code raised while its objects were freed: {describe_exception(exc)}"
        gc.freeze()  # what is left is never collected, so the chain's finalisers never run again
        return f"deferred code (finalisers) kept creating garbage after {COLLECT_ROUNDS} collections"

    def drop_all(self) -> None:
        """Forget mechanisms (their globals, state and source lines) and the history."""
        for mech_id in list(self.mechs):
            linecache.cache.pop(f"<mechanism {mech_id}>", None)
        self.mechs.clear()
        self.history = []
        self.copies = []
        self.incumbent = None
        self.incumbent_at = None
        with mechanism_mode():
            self.collect()
        policy.take_violations()
        self.ctx_stale = True

    # -- ctx --------------------------------------------------------------------
    def record(self, trial: dict[str, Any]) -> None:
        """Append a finished trial to the history; it becomes the incumbent if kept."""
        self.history.append(trial)
        self.copies.append(copy_plan(trial))
        if trial.get("kept"):
            self.incumbent = trial
            self.incumbent_at = len(self.history) - 1

    def ctx(self, t: int, guidance: dict[str, Any], keys: frozenset[str] | None = None) -> dict[str, Any]:
        """A fresh ctx (per the contract) for one call; mechanisms may mutate it freely.

        The same value as ``marshal.loads(marshal.dumps({"space": ..., "history": ..., "incumbent": ...,
        "budget": ...}))`` (the incumbent is the history entry it is, as marshal keeps shared objects
        shared), made in a fraction of the time: each history entry is copied by its plan
        (:func:`copy_plan`), so only its containers are new objects (its numbers and strings are immutable).
        ``keys``: the only keys the hook can read (``sandbox.hookcode``; None: any), each made as above;
        without ``history`` the history is not copied at all."""
        if self.ctx_stale:
            self.space_blob = marshal.dumps(self.space)
            self.ctx_stale = False
        if keys is not None and "history" not in keys:
            out: dict[str, Any] = {}
            if "space" in keys:
                out["space"] = marshal.loads(self.space_blob)
            if "incumbent" in keys:
                out["incumbent"] = fresh(self.incumbent)
            if "budget" in keys:
                out["budget"] = self.budget
            if "trial_index" in keys:
                out["trial_index"] = t
            if "guidance" in keys:
                out["guidance"] = fresh(guidance)
            return out
        history = copy_entries(self.history, self.copies)
        incumbent = None
        if self.incumbent is not None:
            at = self.incumbent_at
            incumbent = history[at] if at is not None and self.history[at] is self.incumbent else fresh(self.incumbent)
        return {"space": marshal.loads(self.space_blob), "history": history, "incumbent": incumbent,
                "budget": self.budget, "trial_index": t, "guidance": fresh(guidance)}


def _frames(error: Any) -> list[Any]:
    """The frames of ``error``'s traceback (read with worker rights; cleared later in mechanism mode)."""
    out: list[Any] = []
    if isinstance(error, BaseException):
        tb = error.__traceback__
        while tb is not None and len(out) < 10_000:
            out.append(tb.tb_frame)
            tb = tb.tb_next
    return out
