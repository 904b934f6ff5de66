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

The request and response messages and what the worker does for each are in
``sandbox.hooks``; the hardening steps in ``sandbox.hardening``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import unicodedata  # noqa: F401 - the parser imports it for non-ASCII names; after hardening it cannot
import warnings

from bilevel.sandbox.hardening import (  # noqa: F401 - re-exported: the layer tests patch them here
    OS_LAYERS,
    harden,
    import_seccomp,
    take_protocol_fds,
    try_netns,
)
from bilevel.sandbox.hooks import Worker
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
        outcome = worker.invoke(worker.mechs["warm-up"], "propose", 0, (worker.ctx(0, {}), {}), check=True)
    WARMUP_RESULT[0] = outcome
    try:
        raise ValueError("warm-up")
    except ValueError as exc:
        fault_outcome(exc, 0.0)
    to_plain({"a": [1, 2.0, None, True, "s", (1,)]}, 1000)
    cache_own_sources()
    worker.drop_all()


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
    layers = harden(limits, seccomp=seccomp, netns=try_netns)
    worker.send({"ready": True, "layers": layers, "pid": os.getpid()})
    worker.serve(reader)
    os._exit(0)
