"""Layer 2 of the sandbox: the fork server and the worker processes that run mechanism code.

The host (``sandbox.process``) starts the fork server as
``python -s -P -c "...; main()"`` with an environment it builds from scratch,
a fresh temporary working directory, a new session (process group) and a
Unix socket as its stdin and stdout. The fork server:

1. asks to be killed when its parent dies (``PR_SET_PDEATHSIG``);
2. imports everything a worker needs (this module's imports, numpy,
   RestrictedPython, the facades, ``pyseccomp``) and runs a warm-up mechanism
   so that lazy imports inside numpy and statistics happen now, then freezes
   what it holds for the garbage collector;
3. serves ``fork`` and ``kill`` requests on the socket. It runs no mechanism
   code itself.

For every ``fork`` (one per inner run, and one per restart after a fault) it
forks a fresh worker, copy-on-write, with two new pipes whose other ends it
hands to the host over the socket (``SCM_RIGHTS``) and then closes. So nothing
a mechanism allocates or schedules in one worker reaches the next one. The
worker (:func:`child_main`) leaves the server's process group, moves into its
own temporary directory, points fds 0, 1 and 2 at ``/dev/null``, hardens itself
(``sandbox.hardening``: network and IPC namespaces, rlimits, ``nobody``, its
parent-death signal again, seccomp, the audit hook), answers ``ready`` with the
active layers and serves requests (``sandbox.hooks``) with every line
authenticated by the key the host sent in the fork request (``sandbox.channel``).
``kill`` SIGKILLs a worker and reaps it, answering with its exit status.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import unicodedata  # noqa: F401 - the parser imports it for non-ASCII names; after hardening it cannot
import warnings
from typing import Any

from bilevel.sandbox.channel import make_signer
from bilevel.sandbox.hardening import (  # noqa: F401 - re-exported: the layer tests patch them here
    OS_LAYERS,
    build_seccomp,
    harden,
    import_seccomp,
    take_protocol_fds,
    try_netns,
)
from bilevel.sandbox.hookcode import compile_once
from bilevel.sandbox.hooks import Worker
from bilevel.sandbox.lifetime import die_with_parent
from bilevel.sandbox.outcome import Outcome
from bilevel.sandbox.results import cache_own_sources, fault_outcome, to_plain

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
        outcome = worker.invoke(worker.mechs["warm-up"], "propose", 0, [worker.ctx(0, {}), {}], check=True)
    WARMUP_RESULT[0] = outcome
    try:
        raise ValueError("warm-up")
    except ValueError as exc:
        fault_outcome(exc, 0.0)
    to_plain({"a": [1, 2.0, None, True, "s", (1,)]}, 1000)
    cache_own_sources()
    worker.drop_all()


def main() -> None:
    """Entry point of the fork server (see the module doc)."""
    die_with_parent()
    warnings.simplefilter("ignore")
    seccomp = import_seccomp()
    ctl_in, ctl_out = take_protocol_fds()
    os.close(ctl_out)
    worker = Worker(-1, 1_000_000)
    with contextlib.suppress(Exception):
        warm_up(worker)
    del worker
    gc.collect()
    gc.freeze()
    gc.disable()
    ForkServer(socket.socket(fileno=ctl_in), build_seccomp(seccomp)).serve()
    os._exit(0)


class ForkServer:
    """The server's loop: one JSON request line in, one reply line out (with fds for a fork)."""

    def __init__(self, sock: socket.socket, seccomp: Any) -> None:
        self.sock = sock
        self.seccomp = seccomp
        self.buf = b""
        self.children: set[int] = set()

    def serve(self) -> None:
        while True:
            line = self.readline()
            if line is None:
                return  # the host is gone: the workers die with us (parent-death signal)
            try:
                req = json.loads(line)
                op = req.get("op")
                if op == "fork":
                    self.fork(req)
                elif op == "kill":
                    self.reply({"killed": req["pid"], "returncode": self.kill(int(req["pid"]))})
                else:
                    self.reply({"error": f"unknown op {op!r}"})
            except Exception as exc:  # noqa: BLE001 - a bad request must not stop the server
                self.reply({"error": f"{type(exc).__name__}: {exc}"})

    def readline(self) -> bytes | None:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def reply(self, obj: dict[str, Any], fds: list[int] | None = None) -> None:
        data = json.dumps(obj).encode() + b"\n"
        socket.send_fds(self.sock, [data], fds or [])

    def fork(self, req: dict[str, Any]) -> None:
        """Fork one worker with fresh pipes; hand the host its ends (request in, response out).

        The mechanisms the worker is about to load (``req["compile"]``: source and file name, each already
        compiled by the host's own check) are compiled here first, once per source (``hookcode.compile_once``):
        the worker inherits the code. Compiling runs no mechanism code."""
        for source, filename in req.get("compile") or ():
            with contextlib.suppress(Exception):
                compile_once(str(source), str(filename))
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        server = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 70
            try:
                self.sock.close()
                os.close(to_child_w)
                os.close(from_child_r)
                child_main(to_child_r, from_child_w, req, self.seccomp, server)
                code = 0
            finally:
                os._exit(code)
        os.close(to_child_r)
        os.close(from_child_w)
        self.children.add(pid)
        try:
            self.reply({"forked": pid}, [to_child_w, from_child_r])
        finally:
            os.close(to_child_w)
            os.close(from_child_r)

    def kill(self, pid: int) -> int | None:
        """SIGKILL one of our workers (a no-op on one that already exited) and reap it."""
        if pid not in self.children:
            return None
        self.children.discard(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return None
        return os.waitstatus_to_exitcode(status)


def child_main(proto_in: int, proto_out: int, req: dict[str, Any], seccomp: Any, server: int) -> None:
    """A freshly forked worker: leave the server's group, harden, say ready, serve one inner run."""
    die_with_parent(server)
    os.setpgid(0, 0)  # its own group: the host kills the group, never the server's
    with contextlib.suppress(OSError):
        os.chdir(str(req.get("cwd") or "."))
    limits = req["limits"]
    sign = make_signer(bytes.fromhex(str(req["key"])))
    del req
    worker = Worker(proto_out, int(limits["max_value_bytes"]), sign)
    del sign
    reader = os.fdopen(proto_in, "rb")
    layers = harden(limits, seccomp=seccomp, netns=try_netns, parent=server)
    worker.send({"ready": True, "layers": layers, "pid": os.getpid()})
    worker.serve(reader)
