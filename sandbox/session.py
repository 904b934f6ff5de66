"""Host side of the sandbox: a worker process per inner run holding a stack of mechanisms.

:class:`SandboxSession` is what the inner loop talks to. It compiles each
mechanism on the host first (``sandbox.policy.compile_mechanism``), starts a
fork server once (``sandbox.process.ForkServer``) and forks a fresh worker from
it for every inner run (``sandbox.worker``), loads the mechanisms into it and
then forwards hook calls, one JSON line each way. Every response is
authenticated (``sandbox.channel``), size-bounded and validated; nothing a
worker sends can raise in the host.

Each hook call has a wall-clock deadline (``Limits.call_timeout_s``, or less
when the mechanism's share of ``Limits.run_timeout_s`` is nearly spent). The
host waits with ``select``; past the deadline it kills the worker's process
group and the call is a TIMEOUT. Whenever the worker dies (timeout, memory
kill, CPU limit, segfault) the mechanism at fault is disabled (a malformed
response counts as a CRASH fault instead), and before the next call a new
worker is started, the remaining mechanisms are loaded again and the history
is replayed through ``observe`` so their state is rebuilt (the contract makes
a mechanism's state a function of the history); then the session carries on.
The worker acknowledges each request before it runs mechanism code and runs
nothing between requests (a call's deferred code is settled inside the call),
so a stall, a missing acknowledgement or a death of its own between requests
is charged to the mechanism whose code ran last in it; only a worker killed
from outside (or whose server died) is replaced without blaming anyone.

Fault policy: POLICY_VIOLATION, TIMEOUT and MEMORY disable a mechanism at
once; CRASH and CONTRACT_VIOLATION after ``Limits.max_faults``; a disabled
mechanism answers every later call with the outcome that disabled it.
A session is not thread-safe: one inner loop drives it.

The fork server is started as ``python -s -P -c ...`` rather than ``python -I``:
the environment is built from scratch here, so ignoring it (``-E``) adds
nothing, and reading it lets ``PYTHONHASHSEED=0`` make string hashing, hence
set iteration order inside mechanisms, the same in every worker. Without that,
a replayed or resumed run would not reproduce its proposals.
"""

from __future__ import annotations

import dataclasses
import functools
import signal
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from bilevel.sandbox.faults import UNAVAILABLE, Entry, Failure, death_outcome
from bilevel.sandbox.outcome import Outcome, SandboxError, Status, WorkerStartError
from bilevel.sandbox.policy import compile_mechanism
from bilevel.sandbox.process import (  # noqa: F401 - re-exported
    ROOT,
    WORKER_ENV,
    ForkServer,
    Limits,
    ReadFailure,
    WorkerProcess,
    clean,
    exit_outcome,
    plain_json,
    sound_value,
)
from bilevel.sandbox.steps import Part, Steps, Then

DONE_GRACE_S = 5.0
MAX_BLAMELESS_RETRIES = 2
_LOAD = "load"
DEFAULT_LIMITS = Limits()


def worker_command(root: str = ROOT) -> list[str]:
    """The command line of a worker process."""
    code = f"import sys; sys.path.insert(0, {root!r}); from bilevel.sandbox.worker import main; main()"
    return [sys.executable, "-s", "-P", "-c", code]



@functools.lru_cache(maxsize=256)
def _host_check(source: str, filename: str) -> Outcome:
    """``compile_mechanism`` memoised: it is a pure function of its arguments, and the host checks the same
    stack again at every inner run (about 10 ms per mechanism; issue 7's bench/profile_inner.py)."""
    return compile_mechanism(source, filename)


class SandboxSession(Steps):
    """The sandbox of one inner run: one long-lived worker holding a stack of mechanisms.

    Construct it, call :meth:`start`, then per inner-loop iteration call
    :meth:`guide_all`, :meth:`call` (``propose``/``review``) and
    :meth:`observe`; :meth:`close` at the end (or use it as a context manager).
    :meth:`reload` starts the next inner run in a fresh worker from the same fork server.
    """

    def __init__(self, mechanisms: Sequence[tuple[str, str]], space: dict[str, Any], seed: int, budget: int,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._worker: WorkerProcess | None = None
        self._server: ForkServer | None = None
        self._layers: tuple[str, ...] = ()
        self._closed = False
        self._configure(mechanisms, space, seed, budget)

    def _configure(self, mechanisms: Sequence[tuple[str, str]], space: dict[str, Any], seed: int,
                   budget: int) -> None:
        ids = [str(mid) for mid, _ in mechanisms]
        if len(set(ids)) != len(ids):
            raise SandboxError(f"mechanism ids must be unique: {ids}")
        sources = [str(src) for _, src in mechanisms]
        self._entries = {mid: Entry(mid, src, pos) for pos, (mid, src) in enumerate(zip(ids, sources, strict=True))}
        self._order = ids
        self._space = plain_json(space, "space")
        self._seed = int(seed)
        self._budget = int(budget)
        self._history: list[dict[str, Any]] = []
        self._reset_steps()

    # -- context manager ----------------------------------------------------------
    def __enter__(self) -> SandboxSession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- public state -------------------------------------------------------------
    def hooks(self, mech_id: str) -> tuple[str, ...]:
        """The hooks ``mech_id`` defines (empty if it never loaded)."""
        return self._entry(mech_id).hooks

    @property
    def layers(self) -> tuple[str, ...]:
        """The protection layers active in the current (or last) worker."""
        return self._layers

    @property
    def worker_pid(self) -> int | None:
        """The pid of the current worker process, if one is running."""
        return self._worker.pid if self._worker is not None else None

    @property
    def server_pid(self) -> int | None:
        """The pid of the fork server the workers are forked from, if one is running."""
        return self._server.pid if self._server is not None else None

    @property
    def worker_dir(self) -> str | None:
        """The temporary working directory of the current worker (removed when it is reaped)."""
        return self._worker.tmpdir if self._worker is not None else None

    def fault_count(self, mech_id: str) -> int:
        """CRASH and CONTRACT_VIOLATION faults counted against ``mech_id`` so far."""
        return self._entry(mech_id).faults

    def disabled_reason(self, mech_id: str) -> Outcome | None:
        """The outcome that disabled ``mech_id``, or None while it is enabled."""
        return self._entry(mech_id).disabled

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> dict[str, Outcome]:
        """Compile and load every mechanism; failed ones are disabled. OK values are ``{"hooks": [...]}``.

        Called once after construction (and by :meth:`reload`). Starts a worker
        only when some mechanism compiled.
        """
        self._check_open()
        report = self._compile_all()
        for _ in range(len(self._order) + MAX_BLAMELESS_RETRIES + 1):
            if not self.active:
                break
            if self._worker is None or not self._worker.alive():
                self._spawn()
            if self._load_active(report, charge=True):
                break
        else:
            raise SandboxError("the sandbox worker could not load the mechanisms")
        return {mid: report[mid] for mid in self._order if mid in report}

    def reload(self, mechanisms: Sequence[tuple[str, str]], seed: int, budget: int,
               space: dict[str, Any] | None = None) -> dict[str, Outcome]:
        """Start the next inner run in a fresh worker forked from the same server: fresh globals, state,
        history, budgets and limits, and nothing the last run's mechanisms left behind.

        Called between consecutive inner runs instead of a new session (a fork
        costs milliseconds, a new interpreter about 0.3 s; ``bench/sandbox_cost.py``).
        """
        self._check_open()
        self._kill_worker()  # a fresh worker for every inner run: nothing of the last run survives
        self._configure(mechanisms, self._space if space is None else space, seed, budget)
        return self.start()

    def close(self) -> None:
        """Kill the worker and the fork server and reap them; idempotent."""
        self._closed = True
        self._kill_worker()
        self._close_server()

    def disable(self, mech_id: str, reason: str) -> None:
        """Disable a mechanism (called by the host, e.g. after contract violations it detects)."""
        self._disable(mech_id, Outcome(Status.CONTRACT_VIOLATION, message=reason, layer="host"))

    def note_fault(self, mech_id: str, message: str) -> bool:
        """Count a contract fault the host detected (e.g. an invalid config); True if that disabled it."""
        entry = self._entry(mech_id)
        self._account(mech_id, Outcome(Status.CONTRACT_VIOLATION, message=message, layer="host"))
        return not entry.enabled

    # -- hooks --------------------------------------------------------------------
    def guide_all(self, trial_index: int) -> dict[str, Outcome]:
        """Call ``guide`` on every active mechanism that defines it, in stack order (step 1 of an iteration)."""
        self._check_open()
        ahead = self._take_guides(int(trial_index))
        if ahead is not None:
            return ahead
        return self._call_each("guide", self._active_with("guide"), int(trial_index), {}, None)

    def call(self, mech_id: str, hook: str, trial_index: int, guidance: dict[str, Any],
             candidate: dict[str, Any] | None = None, dry: bool = False) -> Outcome:
        """Call ``propose`` or ``review`` on one mechanism (steps 2 and 3 of an iteration).

        ``dry``: the worker restores the mechanism's state after the call (the inner loop's
        counterfactual activation check asks what a hook would answer to other inputs).
        """
        self._check_open()
        entry = self._entry(mech_id)
        if hook not in ("guide", "propose", "review"):
            raise SandboxError(f"call() runs guide, propose or review, not {hook!r}")
        guidance = plain_json(guidance or {}, "guidance")
        candidate = plain_json(candidate, "candidate")
        ahead = self._take(mech_id, hook, int(trial_index), guidance, candidate, dry)
        if ahead is not None:
            return ahead
        if not entry.enabled:
            return self._disabled_outcome(entry)
        if hook not in entry.hooks:
            raise SandboxError(f"mechanism {mech_id!r} does not define {hook!r}")
        results = self._call_each(hook, [mech_id], int(trial_index), guidance, candidate, dry)
        return results.get(mech_id) or self._disabled_outcome(entry)

    def observe(self, trial: dict[str, Any], ahead: int | None = None,
                spec: Part | None = None) -> dict[str, Outcome]:
        """Record a finished trial and call ``observe`` on every active mechanism that defines it (step 5).

        ``ahead``: the index of the next trial, whose guides and proposals then go to the worker in the
        same exchange (``sandbox.steps``); the loop's ``guide_all`` and ``call`` for it take them from there.
        ``spec``: the reviews the loop predicts for that trial (``Steps.speculate``), made only if they hold.
        """
        self._check_open()
        trial = plain_json(trial, "trial")
        if not isinstance(trial, dict) or not isinstance(trial.get("index", 0), int):
            raise SandboxError("a trial must be a dict with an int 'index'")
        self._forget_ahead()
        self._history.append(trial)
        results: dict[str, Outcome] = {}
        retries = 0
        while self.active:
            self._ensure_worker(replay_upto=len(self._history) - 1)
            mechs = self._within_budget(self._active_with("observe"), results)
            if ahead is not None and not retries and self._worker is not None:
                parts, planned = self._ahead_parts(int(ahead), spec)
                outcomes, failure = self._exchange([["obs", trial, mechs], *parts], planned, mechs)
            else:
                request = {"op": "observe", "trial": trial, "mechs": mechs}
                outcomes, failure = self._stream(request, [(m, "observe") for m in mechs], charge=True)
            for mid, out in zip(mechs, outcomes, strict=False):
                if mid not in results:
                    results[mid] = out
                    self._account(mid, out)
            if failure is None:
                break
            retries = self._after_failure(failure, results, retries)
        return {mid: results[mid] for mid in self._order if mid in results}

    # -- internals: calls -----------------------------------------------------------
    def _call_each(self, hook: str, mechs: list[str], t: int, guidance: dict[str, Any],
                   candidate: dict[str, Any] | None, dry: bool = False) -> dict[str, Outcome]:
        results: dict[str, Outcome] = {}
        pending = list(mechs)
        retries = 0
        while pending:
            pending = self._within_budget(pending, results)
            if not pending:
                break
            self._ensure_worker(replay_upto=len(self._history))
            request = {"op": "call", "hook": hook, "mechs": pending, "trial_index": t,
                       "guidance": guidance, "candidate": candidate, **({"dry": True} if dry else {})}
            outcomes, failure = self._stream(request, [(m, hook) for m in pending], charge=True)
            for mid, out in zip(pending, outcomes, strict=False):
                results[mid] = out
                self._account(mid, out)
            if failure is None:
                break
            retries = self._after_failure(failure, results, retries)
            if not failure.blameless:
                pending = [m for m in pending[failure.index + 1:] if self._entries[m].enabled]
        return {mid: results[mid] for mid in mechs if mid in results}

    def _after_failure(self, failure: Failure, results: dict[str, Outcome], retries: int) -> int:
        """Record a failed call (or count a blameless retry); the caller then restarts the worker."""
        if failure.blameless:
            if retries >= MAX_BLAMELESS_RETRIES:
                raise SandboxError("the sandbox worker keeps failing before it runs any mechanism code")
            return retries + 1
        results[failure.mech_id] = failure.outcome
        self._account(failure.mech_id, failure.outcome)
        return retries

    def _stream(self, request: dict[str, Any], calls: list[tuple[str, str]], charge: bool, partial: bool = False,
                then: Then | None = None) -> tuple[list[Outcome], Failure | None]:
        """Send one request and read one exit line per expected call, then ``done``.

        ``partial``: the worker may end the request (``done``) before the last expected call (a ``step``).
        ``then``: called once with the outcomes when all of ``calls`` are in; the calls it returns are expected
        next (a step's speculated reviews, which depend on what came back).
        On a failure the worker is dead (killed if need be) and the failing call is blamed.
        """
        calls = list(calls)
        if then is not None and not calls:
            calls, then = then([]), None
        self.round_trips += 1
        worker = self._worker
        if worker is None:
            raise SandboxError("no worker")
        outcomes: list[Outcome] = []
        start = time.monotonic()
        ack = worker.read(start + self.limits.call_timeout_s + DONE_GRACE_S) if worker.send(request) else None
        if not isinstance(ack, dict) or ack.get("ack") is not True:
            return outcomes, self._no_ack(worker, ack)
        for i, (mid, hook) in enumerate(calls):
            limit, kind = self._call_limit(mid, charge)
            event = worker.read(start + limit)
            now = time.monotonic()
            if partial and isinstance(event, dict) and event.get("done") is True and "error" not in event:
                self._took(worker, event)
                return outcomes, None
            outcome = exit_outcome(event, mid, hook == _LOAD)
            if outcome is None:
                return outcomes, Failure(i, mid, self._fail(worker, event, hook, now - start, limit, kind))
            if charge:
                self._entries[mid].spent_s += now - start
            worker.last_live = mid
            outcomes.append(outcome)
            start = now
            if then is not None and i == len(calls) - 1:
                calls += then(outcomes)
        return outcomes, self._finish(worker, start, len(calls) - 1)

    def _no_ack(self, worker: WorkerProcess, ack: dict[str, Any] | ReadFailure | None) -> Failure:
        """The worker did not acknowledge a request: blame the mechanism whose code ran last, unless
        the worker was killed from outside (SIGKILL without a stall) or its server is gone."""
        culprit = worker.last_live
        stalled = ack is ReadFailure.TIMEOUT
        wrote = isinstance(ack, dict) or ack in (ReadFailure.MALFORMED, ReadFailure.FORGED, ReadFailure.OVERSIZED)
        self._kill_worker()
        code = worker.returncode
        external = not stalled and not wrote and (code is None or code == -signal.SIGKILL)
        if culprit is None or external or culprit not in self._entries or not self._entries[culprit].enabled:
            return UNAVAILABLE
        if stalled:
            outcome = Outcome(Status.TIMEOUT, layer="timeout", message=(
                f"the worker stalled between requests after {culprit}'s last call (no acknowledgement "
                f"within {self.limits.call_timeout_s + DONE_GRACE_S:.3g} s); the worker was killed"))
        elif wrote:
            outcome = Outcome(Status.CRASH, layer="host", message=(
                f"the worker wrote to the protocol channel between requests after {culprit}'s last call"))
        else:
            outcome = death_outcome(code, f"the time between requests after {culprit}'s last call", 0.0)
        return Failure(-1, culprit, outcome)

    def _finish(self, worker: WorkerProcess, start: float, last: int) -> Failure | None:
        """Read the ``done`` line. A worker that does not send it is killed (to be restarted on demand),
        and the mechanism whose code ran last in it is blamed: nothing else runs after its exit line."""
        event = worker.read(start + self.limits.call_timeout_s + DONE_GRACE_S)
        if isinstance(event, ReadFailure) or event.get("done") is not True or "error" in event:
            culprit = worker.last_live
            outcome = self._fail(worker, event, "the end of the request", time.monotonic() - start,
                                 self.limits.call_timeout_s + DONE_GRACE_S, "request deadline")
            if culprit is None or last < 0 or (event is ReadFailure.EOF and worker.returncode == -signal.SIGKILL):
                return None
            return Failure(last, culprit, outcome)
        self._took(worker, event)
        return None

    @staticmethod
    def _took(worker: WorkerProcess, done: dict[str, Any]) -> None:
        cpu = done.get("cpu_s")
        if isinstance(cpu, (int, float)):
            worker.cpu_s = float(cpu)

    def _fail(self, worker: WorkerProcess, event: dict[str, Any] | ReadFailure, hook: str, elapsed: float,
              limit: float, kind: str) -> Outcome:
        """Kill the worker and describe what went wrong during ``hook``."""
        died_alone = event is ReadFailure.EOF
        self._kill_worker()
        if event is ReadFailure.TIMEOUT:
            return Outcome(Status.TIMEOUT, elapsed_s=elapsed, layer="timeout",
                           message=f"{hook} exceeded the {kind} of {limit:.3g} s; the worker was killed")
        if died_alone:
            return death_outcome(worker.returncode, hook, elapsed)
        detail = event.value if isinstance(event, ReadFailure) else f"unexpected line {str(event)[:200]!r}"
        if isinstance(event, dict) and "error" in event:
            detail = f"worker error: {str(event['error'])[:500]}"
        return Outcome(Status.CRASH, elapsed_s=elapsed, layer="host",
                       message=f"malformed response from the worker during {hook} ({detail}); the worker was killed")

    # -- internals: worker ----------------------------------------------------------
    def _spawn(self) -> None:
        """A fresh worker, forked from the session's fork server (started on first use)."""
        self._kill_worker()
        if self._server is None or not self._server.alive():
            self._close_server()
            self._server = ForkServer(worker_command())
        try:
            self._worker = self._server.fork(self.limits, [(self._entries[m].source, f"<mechanism {m}>")
                                                           for m in self.active])
        except WorkerStartError:
            self._close_server()
            raise
        self._layers = self._worker.layers

    def _close_server(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _kill_worker(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None

    def _ensure_worker(self, replay_upto: int) -> None:
        """Make sure a live worker holds every active mechanism and the first ``replay_upto`` trials."""
        if not self.active:
            self._kill_worker()
            return
        if self._worker is not None and self._worker.alive():
            return
        for _ in range(len(self._order) + MAX_BLAMELESS_RETRIES + 1):
            self._spawn()
            if not self.active:
                self._kill_worker()
                return
            if self._load_active(None, charge=True) and self._replay(self._history[:replay_upto]):
                return
        raise SandboxError("the sandbox worker could not be restarted")

    def _load_active(self, report: dict[str, Outcome] | None, charge: bool) -> bool:
        """Load the active mechanisms into the worker; False if the worker died (the culprit is disabled)."""
        ids = self.active
        request = {"op": "load", "space": self._space, "seed": self._seed, "budget": self._budget,
                   "max_value_bytes": self.limits.max_value_bytes,
                   "mechanisms": [[m, self._entries[m].position, self._entries[m].source] for m in ids]}
        outcomes, failure = self._stream(request, [(m, _LOAD) for m in ids], charge=charge)
        for mid, out in zip(ids, outcomes, strict=False):
            self._adopt_load(mid, out, report)
        if failure is not None:
            if not failure.blameless:
                self._adopt_load(failure.mech_id, failure.outcome, report)
            return False
        return True

    def _adopt_load(self, mech_id: str, outcome: Outcome, report: dict[str, Outcome] | None) -> None:
        if report is not None:
            report[mech_id] = outcome
        if outcome.ok:
            self._entries[mech_id].hooks = tuple(outcome.value["hooks"])
        else:
            self._disable(mech_id, outcome)

    def _replay(self, trials: list[dict[str, Any]]) -> bool:
        """Feed the history to a fresh worker through ``observe``; outcomes are ignored unless the worker dies."""
        if not trials:
            return True
        mechs = self._active_with("observe")
        request = {"op": "replay", "trials": trials, "mechs": mechs}
        _, failure = self._stream(request, [(m, "observe") for _ in trials for m in mechs], charge=True)
        if failure is None:
            return True
        if not failure.blameless:
            out = failure.outcome
            self._disable(failure.mech_id, dataclasses.replace(out, message=f"during replay: {out.message}"))
        return False

    # -- internals: bookkeeping -----------------------------------------------------
    def _compile_all(self) -> dict[str, Outcome]:
        report: dict[str, Outcome] = {}
        for mid in self._order:
            outcome = _host_check(self._entries[mid].source, f"<mechanism {mid}>")
            if not outcome.ok:
                report[mid] = outcome
                self._disable(mid, outcome)
        return report

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox session is closed")
