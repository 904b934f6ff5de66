"""Conformance check of a mechanism source: compiled, then run on random contexts in the sandbox.

The outer loop calls :func:`check_conformance` on every new mechanism before
the judge spends a benchmark run on it. The check is property-based:
hypothesis generates random examples (a space of one to six parameters
mixing float, log-float, int, categorical and simplex blocks; a history of
zero to twenty finished trials with valid configs and random scores, some
failed; a budget; a spare candidate for ``review``), and every example is run
twice in the sandbox with the same seed:

- *uninterrupted*: at every past trial index the mechanism's hooks are called
  as the inner loop calls them (guide, propose, review of the trial's config),
  then the trial is observed;
- *resumed*: the history is only replayed through ``observe`` (as after a
  restart), in a second worker process.

Then, at the next trial index, every hook the mechanism defines is called in
both runs. Every output must keep the contract (``mechanisms.contract``):
guidance passes :func:`~mechanisms.contract.check_guidance`, a proposal is
None or a valid config of the space, a review is None, a string or a valid
config, and no call ends in a fault (timeout, crash, memory, policy
violation). The final outputs of both runs must be identical: a mechanism's
behaviour must be a function of the history and the seeded ``random`` alone,
so state kept outside ``observe`` (say, a counter of calls) and any hidden
source of entropy fail the check.

The report carries the first failing example, shrunk a little (shorter
history, fewer parameters) when that is cheap, the layer that stopped the code
(``policy``, ``audit``, ``seccomp``, ``rlimit``, ``timeout``, ``host``), the
sandbox layers that were active, and the timings (compile, worker start, hook
calls).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from bilevel.inner.space import Space, SpaceError
from bilevel.mechanisms import spacekit
from bilevel.mechanisms.contract import ContractError, check_guidance, merge_guidance
from bilevel.sandbox import Limits, SandboxSession, Status, compile_mechanism
from bilevel.sandbox.outcome import Outcome, SandboxError

MECH_ID = "candidate"
MAX_PARAMS = 6
MAX_HISTORY = 20
SHRINK_ATTEMPTS = 6
SHRINK_BUDGET_S = 2.0
CHEAP_TO_SHRINK = frozenset({Status.CONTRACT_VIOLATION, Status.CRASH, Status.POLICY_VIOLATION})
TRACEBACK_CHARS = 1500
SOURCES = ("base:greedy", "mechanism:other", f"mechanism:{MECH_ID}")


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class ConformanceReport:
    """The result of :func:`check_conformance`."""

    ok: bool
    status: str  # a sandbox Status value: "ok", or the failing one
    message: str  # what failed, in words
    example: dict[str, Any] | None  # {"space", "history", "hook", "value", ...} of the failing example
    hooks: tuple[str, ...]
    n_examples: int
    elapsed_s: float
    layer: str = ""  # the sandbox layer that stopped the code ("" when ok)
    layers: tuple[str, ...] = ()  # the sandbox layers active in the workers that ran it
    timings: dict[str, float] = field(default_factory=dict)  # compile_s, startup_s, calls, *_call_s

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (what the run store records, and ``bilevel sandbox-check --json`` prints)."""
        return {
            "ok": self.ok,
            "status": self.status,
            "layer": self.layer,
            "message": self.message,
            "example": self.example,
            "hooks": list(self.hooks),
            "n_examples": self.n_examples,
            "elapsed_s": round(self.elapsed_s, 4),
            "layers": list(self.layers),
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }


# --------------------------------------------------------------------------- examples
@dataclass(frozen=True)
class Example:
    """One random context: a space, a history of finished trials, a budget and a spare candidate."""

    space: dict[str, Any]
    history: tuple[dict[str, Any], ...]
    budget: int
    candidate: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "history": list(self.history), "budget": self.budget,
                "candidate": self.candidate}


def _float_param(draw: st.DrawFn, name: str, log: bool) -> dict[str, Any]:
    if log:
        low = draw(st.sampled_from([1e-3, 1e-6, 1.0, 0.05]))
        high = low * draw(st.sampled_from([1e3, 10.0, 1e6, 1.0]))
    else:
        low = draw(st.one_of(st.sampled_from([0.0, -1.0, 1e-3, -100.0]), st.floats(-1e3, 1e3)))
        high = low + draw(st.one_of(st.sampled_from([1.0, 10.0, 1e-3, 0.0]), st.floats(0.0, 1e3)))
    return {"name": name, "type": "float", "low": float(low), "high": float(high), "log": log}


def _int_param(draw: st.DrawFn, name: str, log: bool) -> dict[str, Any]:
    if log:
        low = draw(st.sampled_from([1, 2, 16]))
        high = low * draw(st.sampled_from([1024, 2, 1]))
    else:
        low = draw(st.one_of(st.sampled_from([0, -5, 1]), st.integers(-1000, 1000)))
        high = low + draw(st.one_of(st.sampled_from([10, 1, 0]), st.integers(0, 1000)))
    return {"name": name, "type": "int", "low": low, "high": high, "log": log}


def _categorical_param(draw: st.DrawFn, name: str) -> dict[str, Any]:
    pools: dict[str, st.SearchStrategy[Any]] = {
        "str": st.sampled_from(["adam", "sgd", "relu", "gelu", "a b", ""]),
        "int": st.integers(-10, 10),
        "float": st.sampled_from([0.0, 0.5, 1.5, -2.0, 1e-3]),
        "bool": st.booleans(),
    }
    kind = draw(st.sampled_from(list(pools)))
    choices = draw(st.lists(pools[kind], min_size=1, max_size=4, unique=True))
    return {"name": name, "type": "categorical", "choices": choices}


@st.composite
def spaces(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON space of 1..MAX_PARAMS parameters of every kind."""
    kinds = draw(st.lists(st.sampled_from(["float", "categorical", "simplex", "int", "log-float", "log-int"]),
                          min_size=1, max_size=MAX_PARAMS))
    params: list[dict[str, Any]] = []
    for i, kind in enumerate(kinds):
        name = f"p{i}"
        if kind in ("float", "log-float"):
            params.append(_float_param(draw, name, kind == "log-float"))
        elif kind in ("int", "log-int"):
            params.append(_int_param(draw, name, kind == "log-int"))
        elif kind == "categorical":
            params.append(_categorical_param(draw, name))
        else:
            k = draw(st.integers(2, 4))
            params.append({"name": name, "type": "simplex", "domains": [f"d{j}" for j in range(k)]})
    space = {"params": params}
    Space.from_json(space)  # a generator bug must show here, not as a mechanism failure
    return space


def _configs(draw: st.DrawFn, space: dict[str, Any]) -> dict[str, Any]:
    u = draw(st.lists(st.floats(0.0, 1.0), min_size=spacekit.dims(space), max_size=spacekit.dims(space)))
    return spacekit.decode(space, u)


@st.composite
def examples(draw: st.DrawFn) -> Example:
    """A random context for one conformance run."""
    space = draw(spaces())
    n = draw(st.integers(0, MAX_HISTORY))
    history: list[dict[str, Any]] = []
    best: float | None = None
    for t in range(n):
        if history and draw(st.integers(0, 4)) == 0:  # repeats happen in real searches
            config = json.loads(json.dumps(history[draw(st.integers(0, len(history) - 1))]["config"]))
        else:
            config = _configs(draw, space)
        score = draw(st.one_of(st.floats(-1e6, 1e6), st.none(), st.sampled_from([0.0, 1.0])))
        kept = score is not None and (best is None or score < best)
        if kept:
            best = score
        history.append({"index": t, "config": config, "score": score, "kept": kept,
                        "source": draw(st.sampled_from(SOURCES))})
    budget = n + draw(st.integers(1, 60))
    return Example(space, tuple(history), budget, _configs(draw, space))


# --------------------------------------------------------------------------- running one example
@dataclass(frozen=True)
class Failure:
    """The first broken rule of one example."""

    status: Status
    message: str
    hook: str
    trial_index: int
    value: Any = None
    run: str = ""
    layer: str = "host"


class _Broken(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _fault_text(out: Outcome) -> str:
    text = out.message or out.status.value
    if out.traceback:
        text += "\n" + out.traceback[-TRACEBACK_CHARS:]
    return text


def _problem(space: Space, hook: str, value: Any) -> str:
    """What is wrong with a hook's OK value, or '' (guide values are checked by the caller)."""
    if value is None or (hook == "review" and isinstance(value, str)) or hook == "observe":
        return ""
    try:
        space.validate(value)
    except SpaceError as exc:
        allowed = "None, a rejection string or a valid config" if hook == "review" else "None or a valid config"
        return f"{hook} must return {allowed}: {exc}"
    return ""


class _Run:
    """One run of one example in one session: replay the history, then call every hook."""

    def __init__(self, session: SandboxSession, example: Example, name: str, call_times: list[float]) -> None:
        self.session = session
        self.example = example
        self.space = Space.from_json(example.space)
        self.name = name
        self.call_times = call_times

    def fail(self, status: Status, message: str, hook: str, t: int, value: Any = None, layer: str = "host") -> _Broken:
        return _Broken(Failure(status, message, hook, t, value, self.name, layer))

    def outcome(self, out: Outcome | None, hook: str, t: int) -> Any:
        if out is None:
            raise self.fail(Status.CRASH, f"the sandbox returned no outcome for {hook}", hook, t)
        self.call_times.append(out.elapsed_s)
        if not out.ok:
            raise self.fail(out.status, f"{hook} at trial {t} failed ({out.status.value}): {_fault_text(out)}", hook, t,
                            layer=out.layer)
        return out.value

    def step(self, t: int, candidate: dict[str, Any] | None) -> list[tuple[str, Any]]:
        """Call guide, propose and review (those defined) at trial ``t``; return their values."""
        hooks = self.session.hooks(MECH_ID)
        outputs: list[tuple[str, Any]] = []
        guidance: dict[str, Any] = {}
        if "guide" in hooks:
            value = self.outcome(self.session.guide_all(t).get(MECH_ID), "guide", t)
            try:
                guidance = merge_guidance([check_guidance(value, self.space.names)])
            except ContractError as exc:
                raise self.fail(Status.CONTRACT_VIOLATION, f"guide at trial {t}: {exc}", "guide", t, value) from None
            outputs.append(("guide", value))
        for hook in ("propose", "review"):
            if hook not in hooks:
                continue
            if hook == "review" and candidate is None:
                candidate = self.example.candidate
            value = self.outcome(self.session.call(MECH_ID, hook, t, guidance, candidate), hook, t)
            problem = _problem(self.space, hook, value)
            if problem:
                raise self.fail(Status.CONTRACT_VIOLATION, f"{problem} (trial {t})", hook, t, value)
            if hook == "propose" and value is not None and candidate is None:
                candidate = value
            outputs.append((hook, value))
        return outputs

    def observe(self, trial: dict[str, Any]) -> None:
        if "observe" in self.session.hooks(MECH_ID):
            self.outcome(self.session.observe(trial).get(MECH_ID), "observe", trial["index"])
        else:
            self.session.observe(trial)

    def run(self, uninterrupted: bool) -> list[tuple[str, Any]]:
        for trial in self.example.history:
            if uninterrupted:
                self.step(trial["index"], trial["config"])
            self.observe(trial)
        return self.step(len(self.example.history), None)


class _Checker:
    """Runs examples in two long-lived sessions (two worker processes), reloaded per run."""

    def __init__(self, source: str, seed: int, limits: Limits, deadline: float) -> None:
        self.source = source
        self.seed = seed
        self.limits = limits
        self.deadline = deadline  # overall, no longer than the per-run budget; no reload resets it
        self.sessions: dict[str, SandboxSession] = {}
        self.hooks: tuple[str, ...] = ()
        self.layers: tuple[str, ...] = ()
        self.call_times: list[float] = []
        self.startup_s: float | None = None

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()

    def session(self, name: str, example: Example) -> SandboxSession:
        """The session ``name``, loaded with a fresh copy of the mechanism for ``example``."""
        mechanisms = [(MECH_ID, self.source)]
        if time.monotonic() >= self.deadline:
            raise _Broken(Failure(Status.TIMEOUT, "the conformance check hit its overall deadline of "
                                  f"{self.limits.run_timeout_s:.3g} s (the per-run budget)", "load", -1, None, name,
                                  "timeout"))
        session = self.sessions.get(name)
        if session is None:
            started = time.perf_counter()
            session = SandboxSession(mechanisms, example.space, self.seed, example.budget, self.limits)
            session.deadline = self.deadline
            self.sessions[name] = session
            loaded = session.start()
            if self.startup_s is None:
                self.startup_s = time.perf_counter() - started
        else:
            loaded = session.reload(mechanisms, self.seed, example.budget, space=example.space)
        self.layers = session.layers or self.layers
        out = loaded.get(MECH_ID)
        if out is None or not out.ok:
            status = out.status if out is not None else Status.CRASH
            text = _fault_text(out) if out is not None else "no load outcome"
            raise _Broken(Failure(status, f"loading the mechanism failed ({status.value}): {text}", "load", -1,
                                  None, name, out.layer if out is not None else "host"))
        self.hooks = session.hooks(MECH_ID)
        return session

    def run(self, name: str, example: Example, uninterrupted: bool) -> list[tuple[str, Any]]:
        return _Run(self.session(name, example), example, name, self.call_times).run(uninterrupted)

    def timings(self, compile_s: float) -> dict[str, float]:
        """Compile time, the first worker's start-up (with the load), and the hook calls' times in the worker."""
        out = {"compile_s": compile_s, "calls": float(len(self.call_times))}
        if self.startup_s is not None:
            out["startup_s"] = self.startup_s
        if self.call_times:
            out["median_call_s"] = statistics.median(self.call_times)
            out["max_call_s"] = max(self.call_times)
            out["total_call_s"] = sum(self.call_times)
        return out

    def check(self, example: Example) -> Failure | None:
        """The first broken rule of ``example``, or None."""
        try:
            full = self.run("uninterrupted", example, uninterrupted=True)
            resumed = self.run("resumed", example, uninterrupted=False)
        except _Broken as exc:
            return exc.failure
        except SandboxError as exc:
            return Failure(Status.CRASH, f"the sandbox failed: {exc}", "", -1, layer="host")
        return _compare(full, resumed, len(example.history))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _compare(full: list[tuple[str, Any]], resumed: list[tuple[str, Any]], t: int) -> Failure | None:
    for (hook, a), (_, b) in zip(full, resumed, strict=True):
        if _canonical(a) != _canonical(b):
            return Failure(
                Status.CONTRACT_VIOLATION,
                f"not deterministic: at trial {t}, {hook} returned {_canonical(a)[:300]} in an uninterrupted run "
                f"but {_canonical(b)[:300]} in a run resumed by replaying the same history through observe, with "
                "the same seed. Its outputs must depend only on the history (state built in observe) and the "
                "seeded random: no state changed in guide/propose/review, no counters of calls.",
                hook, t, {"uninterrupted": a, "resumed": b}, "both")
    return None


# --------------------------------------------------------------------------- shrinking
def _without_param(example: Example, name: str) -> Example:
    params = [p for p in example.space["params"] if p["name"] != name]
    history = tuple({**tr, "config": {k: v for k, v in tr["config"].items() if k != name}} for tr in example.history)
    candidate = {k: v for k, v in example.candidate.items() if k != name}
    return replace(example, space={"params": params}, history=history, candidate=candidate)


def _simpler(example: Example) -> Iterator[Example]:
    """Smaller variants of ``example``, most promising first."""
    n = len(example.history)
    if n:
        yield replace(example, history=())
    if n > 1:
        yield replace(example, history=example.history[: n // 2])
        yield replace(example, history=example.history[:-1])
    if len(example.space["params"]) > 1:
        for p in example.space["params"]:
            yield _without_param(example, p["name"])


def _shrink(example: Example, failure: Failure, check: Callable[[Example], Failure | None],
            deadline: float) -> tuple[Example, Failure]:
    """Greedily simplify ``example`` while it keeps failing with the same status (bounded)."""
    if failure.status not in CHEAP_TO_SHRINK:
        return example, failure
    attempts = 0
    improved = True
    while improved and attempts < SHRINK_ATTEMPTS and time.monotonic() < deadline:
        improved = False
        for smaller in _simpler(example):
            if attempts >= SHRINK_ATTEMPTS or time.monotonic() >= deadline:
                break
            attempts += 1
            again = check(smaller)
            if again is not None and again.status == failure.status:
                example, failure, improved = smaller, again, True
                break
    return example, failure


# --------------------------------------------------------------------------- the check
class _Stop(Exception):
    """Ends the hypothesis search at the first failing example."""


def _search(checker: _Checker, max_examples: int) -> tuple[int, tuple[Example, Failure] | None]:
    found: list[tuple[Example, Failure]] = []
    seen: set[str] = set()
    count = 0

    @settings(max_examples=max(1, max_examples), derandomize=True, deadline=None, database=None,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck),
              verbosity=Verbosity.quiet, report_multiple_bugs=False, print_blob=False)
    @given(examples())
    def probe(example: Example) -> None:
        nonlocal count
        if found:  # hypothesis replays the failing example once; do not run it again
            raise _Stop
        key = _canonical(example.to_json())
        if key in seen:  # hypothesis mutates earlier examples, sometimes into copies: ask for another
            reject()
        seen.add(key)
        count += 1
        failure = checker.check(example)
        if failure is not None:
            found.append((example, failure))
            raise _Stop

    try:
        probe()
    except _Stop:
        pass
    except Unsatisfiable:  # hypothesis ran out of fresh examples: what ran, passed
        pass
    return count, (found[0] if found else None)


def _report_example(example: Example, failure: Failure, seed: int) -> dict[str, Any]:
    return {**example.to_json(), "seed": seed, "hook": failure.hook, "trial_index": failure.trial_index,
            "value": failure.value, "run": failure.run}


def check_conformance(source: str, *, max_examples: int = 12, seed: int = 0,
                      limits: Limits | None = None) -> ConformanceReport:
    """Compile ``source`` and run it on ``max_examples`` random contexts; see the module doc.

    Called by the outer loop before judging a new mechanism, and by
    ``bilevel sandbox-check``. Never raises for a bad mechanism: every
    problem is a report with ``ok=False``.
    """
    start = time.monotonic()
    compiled = compile_mechanism(source)
    compile_s = time.monotonic() - start
    if not compiled.ok:
        return ConformanceReport(False, compiled.status.value, compiled.message or compiled.status.value, None,
                                 (), 0, time.monotonic() - start, compiled.layer or "policy", (),
                                 {"compile_s": compile_s, "calls": 0.0})
    hooks = tuple(compiled.value["hooks"])
    limits = limits or Limits()
    checker = _Checker(source, seed, limits, start + limits.run_timeout_s)
    try:
        n, found = _search(checker, max_examples)
        if found is not None:
            shrink_until = min(time.monotonic() + SHRINK_BUDGET_S, checker.deadline)
            example, failure = _shrink(*found, checker.check, shrink_until)
    finally:
        checker.close()
    hooks = checker.hooks or hooks
    elapsed = time.monotonic() - start
    timings = checker.timings(compile_s)
    if found is None:
        return ConformanceReport(True, Status.OK.value, f"passed {n} examples", None, hooks, n, elapsed, "",
                                 checker.layers, timings)
    return ConformanceReport(False, failure.status.value, failure.message, _report_example(example, failure, seed),
                             hooks, n, elapsed, failure.layer, checker.layers, timings)
