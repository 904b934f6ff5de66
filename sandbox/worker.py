"""Layer 2 of the sandbox: the worker process that runs mechanism code.

The host (``sandbox.session``) starts it as ``python -s -P -c "...; main()"``
with an environment it builds from scratch, a fresh temporary working
directory and a new session (process group). The worker then, in this order:

1. has imported everything it needs (this module's imports, numpy,
   RestrictedPython, the facades) and runs a warm-up mechanism so that lazy
   imports inside numpy and statistics happen now;
2. keeps private copies of its protocol fds and points fds 0, 1 and 2 at
   ``/dev/null``, so nothing mechanism code or C code prints reaches the pipe;
3. reads the ``init`` request (the limits) and hardens itself: a network
   namespace where it can (root, or an unprivileged user namespace), rlimits
   (address space, CPU, file size, open files, core), drops root to ``nobody``,
   a seccomp filter if ``pyseccomp`` and ``libseccomp.so.2`` are there (imported
   at start-up, before hardening), and finally an audit hook that refuses file, network, process,
   ctypes and import events (everything but a short list while mechanism code
   runs);
4. answers ``ready`` with the active layers and serves requests.

Protocol: one JSON object per line each way. Requests (``op``): ``load``,
``call``, ``observe``, ``replay``, ``reset``. The worker acknowledges each
request (``{"ack": true}``) before it runs any mechanism code, so a worker
that dies before the ack is nobody's fault. For every hook call (or load)
the worker writes ``{"exit": mech_id, "outcome": {...}}`` as soon as it
finishes, then ``{"done": true, "cpu_s": ...}`` at the end of the request, so
the host can time each call and blame the right mechanism when one hangs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import hashlib
import json
import linecache
import marshal
import os
import random
import resource
import sys
import time
import traceback
import unicodedata  # noqa: F401 - the parser imports it for non-ASCII names; after hardening it cannot
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from types import CodeType, FunctionType
from typing import IO, Any

import numpy as np

from bilevel.mechanisms.contract import HOOK_NAMES
from bilevel.sandbox import facades, policy
from bilevel.sandbox.outcome import Outcome, Status

HOOK_ARITY: dict[str, int] = {"guide": 2, "propose": 2, "review": 3, "observe": 3}
TRACEBACK_CAP = 20_000
MESSAGE_CAP = 2_000
MAX_DEPTH = 64
MAX_INT_BITS = 256
FULL_GC_EVERY = 32
NOBODY = 65534
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_THREAD = 0x00010000

# Audit events refused even outside mechanism code, once armed.
DENIED_EVENTS = frozenset({
    "open", "import", "sys.addaudithook", "sys.settrace", "sys.setprofile", "builtins.input",
    "pickle.find_class", "code.__new__", "function.__new__", "gc.get_objects", "gc.get_referrers",
    "gc.get_referents", "sys._current_frames",
})
DENIED_PREFIXES = (
    "os.", "socket.", "subprocess.", "ctypes.", "shutil.", "pty.", "mmap.", "urllib.", "http.",
    "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.", "telnetlib.", "webbrowser.", "glob.",
    "tempfile.", "sqlite3.", "resource.", "fcntl.", "signal.", "syslog.", "cpython.", "_posixsubprocess",
)
# Audit events allowed while mechanism code runs (everything else is refused then). ``builtins.id``
# comes from numpy's array printing (a recursion guard keyed on ``id(self)``); mechanisms have no ``id``.
MECHANISM_EVENTS: frozenset[str] = frozenset({"builtins.id"})


# --------------------------------------------------------------------------- audit
class _AuditState:
    """What the audit hook needs to know: is mechanism code running, which code may be exec'd."""

    mechanism = False
    exec_code: CodeType | None = None


_AUDIT = _AuditState()


def audit_hook(event: str, args: tuple[Any, ...]) -> None:
    """The worker's audit hook; armed last, never removed."""
    if _AUDIT.mechanism:
        if event == "exec" and args and args[0] is _AUDIT.exec_code:
            _AUDIT.exec_code = None
            return
        if event in MECHANISM_EVENTS:
            return
        policy.refuse(f"audit: event {event!r} refused while mechanism code runs", layer="audit")
    if event in DENIED_EVENTS or event.startswith(DENIED_PREFIXES):
        policy.refuse(f"audit: event {event!r} refused in the sandbox worker", layer="audit")


@contextlib.contextmanager
def mechanism_mode() -> Iterator[None]:
    """Mark mechanism code as running (the audit hook is strictest then)."""
    _AUDIT.mechanism = True
    try:
        yield
    finally:
        _AUDIT.mechanism = False


# --------------------------------------------------------------------------- plain values
class NotPlain(Exception):
    """A returned value is not plain JSON data; the message says where and why."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        where = f" at value{self.path}" if self.path else ""
        return f"{self.reason}{where}"


def _plain(v: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise NotPlain("returned value has too many elements")
    if depth > MAX_DEPTH:
        raise NotPlain(f"returned value is nested deeper than {MAX_DEPTH}")
    t = type(v)
    if t is str:
        return _text(v)
    if v is None or t is bool or t is float:
        return v
    if t is int:
        if v.bit_length() > MAX_INT_BITS:
            raise NotPlain(f"integer with more than {MAX_INT_BITS} bits")
        return v
    if t is dict:
        return _plain_dict(v, depth, budget)
    if t is list or t is tuple:
        return _plain_list(v, depth, budget)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return _plain(int(v), depth, budget)
    if isinstance(v, np.floating):
        return float(v)
    hint = " (use .tolist())" if isinstance(v, np.ndarray) else ""
    raise NotPlain(f"a {t.__name__} is not plain data (dict with str keys, list, str, int, float, bool, None){hint}")


def _text(v: str) -> str:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise NotPlain("a string that is not valid Unicode text (lone surrogate)") from None
    return v


def _plain_dict(v: dict[Any, Any], depth: int, budget: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, x in v.items():
        if type(k) is not str:
            raise NotPlain(f"dict key {type(k).__name__} {str(k)[:40]!r} is not a str")
        _text(k)
        try:
            out[k] = _plain(x, depth + 1, budget)
        except NotPlain as exc:
            raise NotPlain(exc.reason, f"[{k[:40]!r}]{exc.path}") from None
    return out


def _plain_list(v: list[Any] | tuple[Any, ...], depth: int, budget: list[int]) -> list[Any]:
    out: list[Any] = []
    for i, x in enumerate(v):
        try:
            out.append(_plain(x, depth + 1, budget))
        except NotPlain as exc:
            raise NotPlain(exc.reason, f"[{i}]{exc.path}") from None
    return out


def to_plain(value: Any, max_bytes: int) -> Any:
    """``value`` as plain JSON data (tuples become lists, numpy scalars Python numbers), or NotPlain."""
    plain = _plain(value, 0, [max_bytes // 2 + 16])
    size = len(json.dumps(plain, allow_nan=True, separators=(",", ":")))
    if size > max_bytes:
        raise NotPlain(f"returned value is {size} bytes of JSON; the limit is {max_bytes}")
    return plain


# --------------------------------------------------------------------------- outcomes
def cap(text: str, limit: int) -> str:
    """``text`` as valid UTF-8, cut to about ``limit`` characters, keeping its head and (mostly) its tail."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    return f"{text[:head]}\n... [{len(text) - limit} characters cut] ...\n{text[-tail:]}"


def _describe_exception(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = ""
    name = type(exc).__name__
    return cap(f"{name}: {text}" if text else name, MESSAGE_CAP)


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without the worker's own frame, capped."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:  # noqa: BLE001 - a source line the worker may not read (the audit hook refuses open)
        policy.take_violations()
        text = _bare_traceback(exc, tb)
    return cap(text, TRACEBACK_CAP)


def _bare_traceback(exc: BaseException, tb: Any) -> str:
    """A traceback with file, line and function of each frame but no source lines."""
    try:
        frames = traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)
        lines = ["Traceback (most recent call last):\n"]
        lines += [f'  File "{f.filename}", line {f.lineno}, in {f.name}\n' for f in frames]
        return "".join(lines) + _describe_exception(exc) + "\n"
    except Exception as inner:  # noqa: BLE001
        return f"(traceback unavailable: {type(inner).__name__})"


def cache_own_sources() -> None:
    """Read the sources of the sandbox and mechanisms packages into ``linecache`` before hardening,
    so that tracebacks through the guards show their lines without opening files later."""
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.split(".")[0] in ("sandbox", "mechanisms") and isinstance(path, str):
            linecache.getlines(path)


def fault_outcome(exc: BaseException, elapsed: float) -> Outcome:
    """Map an exception raised by mechanism code to an outcome."""
    tb = format_traceback(exc)
    message = _describe_exception(exc)
    if isinstance(exc, policy.PolicyViolation):
        return Outcome(Status.POLICY_VIOLATION, message=message, traceback=tb, elapsed_s=elapsed, layer=exc.layer)
    if isinstance(exc, MemoryError):
        return Outcome(Status.MEMORY, message=message, traceback=tb, elapsed_s=elapsed, layer="rlimit")
    return Outcome(Status.CRASH, message=message, traceback=tb, elapsed_s=elapsed)


def judge(value: Any, exc: BaseException | None, elapsed: float, check: bool, max_bytes: int) -> Outcome:
    """The outcome of one call, from what it returned or raised and the violations it recorded."""
    violations = policy.take_violations()
    if violations:
        first = violations[0]
        tb = format_traceback(exc) if exc is not None else ""
        return Outcome(Status.POLICY_VIOLATION, message=cap(first.message, MESSAGE_CAP), traceback=tb,
                       elapsed_s=elapsed, layer=first.layer)
    if exc is not None:
        return fault_outcome(exc, elapsed)
    if not check:
        return Outcome(Status.OK, elapsed_s=elapsed)
    try:
        return Outcome(Status.OK, value=to_plain(value, max_bytes), elapsed_s=elapsed)
    except NotPlain as problem:
        return Outcome(Status.CONTRACT_VIOLATION, message=cap(str(problem), MESSAGE_CAP), elapsed_s=elapsed,
                       layer="host")
    except (RecursionError, MemoryError, ValueError, TypeError) as problem:
        return Outcome(Status.CONTRACT_VIOLATION, message=_describe_exception(problem), elapsed_s=elapsed,
                       layer="host")


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
                self.send_done(error=_describe_exception(exc))

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


# --------------------------------------------------------------------------- start-up
WARMUP_SOURCE = '''
import math, random, statistics, itertools, functools, collections, spacekit
import numpy as np
from numpy.linalg import norm

def propose(ctx, state):
    ünïcode = 1  # a non-ASCII identifier: the parser normalises it (NFKC) with unicodedata
    a = np.asarray([[2.0, 0.5], [0.5, 1.0]])
    v = np.array([3.0, 1.0, 2.0])
    out = [np.zeros(2), np.ones(2), np.full(2, 1.5), np.zeros_like(v), np.ones_like(v), np.arange(3),
           np.linspace(0, 1, 3), np.mean(v), np.median(v), np.std(v), np.var(v), np.sum(v), np.prod(v),
           np.min(v), np.max(v), np.argmin(v), np.argmax(v), np.argsort(v), np.sort(v), np.clip(v, 0, 1),
           np.sqrt(v), np.square(v), np.exp(v), np.log(v), np.log10(v), np.abs(v), np.dot(v, v),
           np.cumsum(v), np.diff(v), np.percentile(v, 50), np.quantile(v, 0.5), np.where(v > 1),
           np.isfinite(v), np.isnan(v), np.concatenate([v, v]), np.stack([v, v]), np.maximum(v, 1),
           np.minimum(v, 1), np.round(v), np.floor(v), np.ceil(v), np.unique(v), np.any(v), np.all(v),
           np.nanmean(v), np.nanmin(v), np.nanmax(v), norm(v), np.linalg.solve(a, v[:2]),
           np.linalg.inv(a), np.linalg.det(a), np.linalg.lstsq(a, v[:2]), np.linalg.cholesky(a),
           np.linalg.eigh(a), v.mean(), v.sum(), v.std(), v.var(), v.argsort(), v.reshape(3, 1).T,
           v.flatten(), v.copy().tolist(), v.item(0), v.any(), v.cumsum(), v.clip(0, 1), v.round(),
           v.dot(v), v.prod(), v.ravel(), str(a), repr(v), np.mean([]), np.array([1, 2]) / 0]
    try:
        np.linalg.inv(np.zeros((2, 2)))
    except np.linalg.LinAlgError:
        pass
    try:
        np.zeros(2) + "x"
    except Exception:
        pass
    xs = [1.0, 2.0, 4.0, 8.0]
    out += [statistics.mean(xs), statistics.median(xs), statistics.stdev(xs), statistics.pstdev(xs),
            statistics.variance(xs), statistics.pvariance(xs), statistics.quantiles(xs), statistics.fmean(xs),
            statistics.median_low(xs), statistics.median_high(xs)]
    try:
        statistics.mean([])
    except statistics.StatisticsError:
        pass
    out += [random.random(), random.uniform(0, 1), random.gauss(0, 1), random.normalvariate(0, 1),
            random.lognormvariate(0, 1), random.expovariate(1), random.triangular(), random.betavariate(1, 2),
            random.randint(0, 3), random.randrange(3), random.choice(xs), random.choices(xs, k=2),
            random.sample(xs, 2)]
    random.shuffle(xs)
    c = collections.Counter(["a", "b", "a"])
    d = collections.defaultdict(list)
    d["k"].append(1)
    q = collections.deque([1, 2], maxlen=3)
    q.appendleft(0)
    o = collections.OrderedDict(a=1)
    o.move_to_end("a")
    out += [c.most_common(1), sorted(c.elements()), dict(d), list(q), list(o.items()),
            functools.reduce(lambda p, r: p + r, xs), functools.partial(max, 0)(1),
            sorted(xs, key=functools.cmp_to_key(lambda p, r: p - r)),
            list(itertools.islice(itertools.count(), 3)), list(itertools.product([1], [2])),
            list(itertools.combinations(xs, 2)), list(itertools.chain.from_iterable([[1], [2]]))]
    out += [math.sqrt(2.0), math.log(3.0), math.exp(1.0), math.isfinite(1.0), math.fsum(xs)]
    space = ctx["space"]
    cfg = spacekit.decode(space, [0.5] * spacekit.dims(space))
    out += [spacekit.encode(space, cfg), spacekit.repair(space, cfg), spacekit.distance(space, cfg, cfg),
            spacekit.key(space, cfg), spacekit.names(space), spacekit.params(space), spacekit.coord_names(space),
            spacekit.coord_owner(space), spacekit.normalise(["a", "b"], [1.0, 3.0])]
    print("warm-up", out[0])
    state["n"] = len(out)
    return {"x": 0.5, "n": len(out), "s": str(out)[:10], "t": (1, 2)}
'''

WARMUP_RESULT: list[Outcome | None] = [None]
WARMUP_SPACE = {"params": [
    {"name": "x", "type": "float", "low": 0.0, "high": 1.0, "log": False},
    {"name": "n", "type": "int", "low": 1, "high": 100, "log": True},
    {"name": "c", "type": "categorical", "choices": ["a", "b"]},
    {"name": "mix", "type": "simplex", "domains": ["p", "q"]},
]}


def warm_up(worker: Worker) -> None:
    """Exercise every facade and the fault paths once, before the audit hook refuses new imports."""
    worker.space = WARMUP_SPACE
    worker.ctx_stale = True
    outcome = worker.load_one("warm-up", 0, WARMUP_SOURCE)
    if outcome.ok:
        outcome = worker.invoke(worker.mechs["warm-up"], "propose", 0, (worker.ctx(0, {}), {}), check=True)
    WARMUP_RESULT[0] = outcome
    try:
        raise ValueError("warm-up")
    except ValueError as exc:
        fault_outcome(exc, 0.0)
    to_plain({"a": [1, 2.0, None, True, "s", (1,)]}, 1000)
    cache_own_sources()
    worker.drop_all()


def take_protocol_fds() -> tuple[int, int]:
    """Private copies of stdin/stdout for the protocol; fds 0, 1 and 2 then point at /dev/null."""
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return proto_in, proto_out


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    _, current_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY and os.getuid() != 0:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def set_rlimits(limits: dict[str, Any]) -> None:
    """Address space, CPU seconds, file size, open files and core size of this process."""
    _set_limit(resource.RLIMIT_AS, int(limits["memory_bytes"]))
    cpu = int(limits["cpu_s"])
    _set_limit(resource.RLIMIT_CPU, cpu, cpu + 5)
    _set_limit(resource.RLIMIT_FSIZE, int(limits["file_size_bytes"]))
    _set_limit(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    _set_limit(resource.RLIMIT_CORE, 0)


def try_netns() -> bool:
    """Move into a fresh network namespace (only loopback, down) where the machine allows it.

    As root, a plain ``unshare(CLONE_NEWNET)``; otherwise a new user namespace with it, which
    unprivileged users may create on many Linux systems (and which gives no rights outside it).
    """
    flags = CLONE_NEWNET if os.getuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.unshare(flags) == 0)
    except Exception:  # noqa: BLE001
        return False


def drop_privileges() -> bool:
    """Run as ``nobody`` from here on when started as root; no new processes or threads either."""
    if os.getuid() != 0:
        return False
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except OSError:
        return os.getuid() != 0
    return True


def import_seccomp() -> Any:
    """The ``pyseccomp`` module, or None where it (or ``libseccomp.so.2``) is missing.

    Imported before hardening: pyseccomp finds libseccomp with ``ctypes.util.find_library``,
    which starts ``ldconfig`` in a child process, and that is refused once the worker is hardened.
    """
    try:
        import pyseccomp  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - not installed, or libseccomp.so.2 missing
        return None
    return pyseccomp


#: System calls the seccomp filter refuses outright (EPERM): networking, new programs and processes,
#: signals to others, tracing, changing files and the file tree, namespaces, mounts, limits, kernel
#: interfaces that bypass the filter (io_uring) or reach the kernel's deeper surface.
SECCOMP_DENIED: tuple[str, ...] = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "execve", "execveat", "fork",
    "vfork", "kill", "tkill", "tgkill", "ptrace", "process_vm_readv", "process_vm_writev", "unshare", "setns",
    "mount", "umount2", "pivot_root", "chroot", "setrlimit", "prlimit64", "creat", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat", "symlink", "symlinkat",
    "truncate", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat", "mknod", "mknodat",
    "name_to_handle_at", "open_by_handle_at", "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf",
    "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "init_module", "finit_module",
    "delete_module", "kexec_load", "reboot", "swapon", "swapoff",
)


def try_seccomp(sc: Any) -> bool:
    """A seccomp filter (``sc`` is pyseccomp or None): no sockets, exec, fork, kill or writable opens.

    A name this architecture lacks (``open`` and ``creat`` on aarch64) is skipped; the filter is
    active only if it loads.
    """
    if sc is None:
        return False
    try:
        deny = sc.ERRNO(errno.EPERM)
        flt = sc.SyscallFilter(defaction=sc.ALLOW)
    except Exception:  # noqa: BLE001
        return False

    def rule(action: int, name: str, *args: Any) -> None:
        with contextlib.suppress(Exception):  # not a system call on this architecture
            flt.add_rule(action, name, *args)

    for name in SECCOMP_DENIED:
        rule(deny, name)
    rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    rule(sc.ERRNO(errno.ENOSYS), "clone3")  # flags in a struct: make libc fall back to clone
    rule(sc.ERRNO(errno.ENOSYS), "openat2")  # flags in a struct: make libc fall back to openat
    for flag in (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC):
        rule(deny, "open", sc.Arg(1, sc.MASKED_EQ, flag, flag))
        rule(deny, "openat", sc.Arg(2, sc.MASKED_EQ, flag, flag))
    try:
        flt.load()
    except Exception:  # noqa: BLE001
        return False
    return True


#: The layers :func:`harden` can apply, in order (``policy`` and ``timeout`` are not the worker's own).
OS_LAYERS: tuple[str, ...] = ("netns", "rlimit", "uid", "seccomp", "audit")


def harden(limits: dict[str, Any], only: Collection[str] | None = None, seccomp: Any = None) -> list[str]:
    """Apply the OS layers in order; return the names of the active layers.

    ``only`` restricts hardening to some of :data:`OS_LAYERS` (the layer tests use it to try
    one layer alone); the worker always applies all. ``seccomp`` is the module from
    :func:`import_seccomp`, imported before this call.
    """
    wanted = set(OS_LAYERS if only is None else only)
    layers = ["policy"]
    if "netns" in wanted and try_netns():
        layers.append("netns")
    if "rlimit" in wanted:
        set_rlimits(limits)
        layers.append("rlimit")
    if "uid" in wanted and drop_privileges():
        layers.append("uid")
    if "seccomp" in wanted and try_seccomp(seccomp):
        layers.append("seccomp")
    if "audit" in wanted:
        sys.addaudithook(audit_hook)
        layers.append("audit")
    layers.append("timeout")
    return layers


def main() -> None:
    """Entry point of the worker process (see the module doc for the start-up order)."""
    warnings.simplefilter("ignore")
    seccomp = import_seccomp()
    proto_in, proto_out = take_protocol_fds()
    reader = os.fdopen(proto_in, "rb")
    worker = Worker(proto_out, 1_000_000)
    with contextlib.suppress(Exception):
        warm_up(worker)
    first = reader.readline()
    if not first:
        os._exit(0)
    limits = json.loads(first)["limits"]
    worker.max_value_bytes = int(limits["max_value_bytes"])
    gc.collect()
    gc.freeze()
    gc.disable()
    layers = harden(limits, seccomp=seccomp)
    worker.send({"ready": True, "layers": layers, "pid": os.getpid()})
    worker.serve(reader)
    os._exit(0)
