"""Bench (issue 6): the cost of the sandbox, per hook call and per worker start.

For two hooks (a trivial ``propose`` and the built-in elite-crossover
mechanism's ``propose`` on a history of 20 trials) it times, in this process and side by
side: the function compiled as plain Python and called in-process, the same
source compiled under the sandbox policy (RestrictedPython guards) and called
in-process, and one call through the worker (``SandboxSession.call``: a JSON
line each way, a fresh ctx, the host's checks). It prints the medians and the
ratio worker / in-process. Then it times the start-up of a session (spawn of
the fork server, warm-up, the first fork, hardening, handshake and loading one
mechanism), and the cost per inner run (issue 11) of a stack of two
mechanisms: a clean worker forked for every inner run (``SandboxSession.reload``:
kill and reap the last worker, fork, harden, handshake, load) next to the reuse
of one worker across inner runs that the sandbox did before (a new ``load``
request into the same worker, timed here through the session's own loading
path), and next to one hook round trip. It prints the active sandbox layers.

    .venv/bin/python bench/sandbox_cost.py [--calls 300] [--starts 7] [--runs 30]
"""

from __future__ import annotations

import argparse
import builtins
import marshal
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import header

from bilevel.mechanisms import spacekit
from bilevel.mechanisms.library import load_source
from bilevel.sandbox import Limits, SandboxSession
from bilevel.sandbox.facades import build_modules
from bilevel.sandbox.policy import compile_source, restricted_globals

SPACE: dict[str, Any] = {"params": [
    {"name": "x", "type": "float", "low": 0.0, "high": 1.0, "log": False},
    {"name": "n", "type": "int", "low": 1, "high": 64, "log": True},
    {"name": "c", "type": "categorical", "choices": ["a", "b", "c"]},
]}
TRIVIAL = "def propose(ctx, state):\n    return {'x': 0.5, 'n': 4, 'c': 'a'}\n"
HISTORY = 20
LIMITS = Limits(call_timeout_s=30.0, run_timeout_s=3600.0)


def _trials(n: int) -> list[dict[str, Any]]:
    rng = random.Random(0)
    return [{"index": t, "config": {"x": rng.random(), "n": rng.randint(1, 64), "c": rng.choice("abc")},
             "score": rng.random(), "kept": t == 0, "source": "base:greedy"} for t in range(n)]


def _ctx(trials: list[dict[str, Any]]) -> dict[str, Any]:
    kept = [t for t in trials if t["kept"]]
    return {"space": SPACE, "history": trials, "incumbent": kept[-1] if kept else None, "budget": 100,
            "trial_index": len(trials), "guidance": {}}


def _median_us(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _plain_import(name: str, *args: Any, **kwargs: Any) -> Any:
    """``import`` for plain Python: ``spacekit`` is ``mechanisms.spacekit``, the rest as usual."""
    return spacekit if name == "spacekit" else builtins.__import__(name, *args, **kwargs)


def _in_process(source: str, restricted: bool, trials: list[dict[str, Any]]) -> Callable[[], Any]:
    """A thunk that calls ``propose`` in this process, with a fresh ctx as the worker gives one."""
    if restricted:
        code, outcome = compile_source(source, "<bench>")
        assert code is not None, outcome
        glb = restricted_globals(build_modules(random.Random(0)))
    else:
        code = compile(source, "<bench>", "exec")
        glb = {"__name__": "bench", "__builtins__": {**vars(builtins), "__import__": _plain_import}}
    exec(code, glb)
    state: dict[str, Any] = {}
    if "observe" in glb:
        for trial in trials:
            glb["observe"](_ctx(trials[: trial["index"]]), state, trial)
    fn = glb["propose"]
    blob = marshal.dumps(_ctx(trials))
    return lambda: fn(marshal.loads(blob), state)


def _through_worker(source: str, trials: list[dict[str, Any]]) -> tuple[SandboxSession, Callable[[], Any]]:
    session = SandboxSession([("m", source)], SPACE, seed=0, budget=100, limits=LIMITS)
    loaded = session.start()
    assert loaded["m"].ok, loaded
    if "observe" in session.hooks("m"):
        for trial in trials:
            session.observe(trial)
    t = len(trials)

    def call() -> Any:
        out = session.call("m", "propose", t, {})
        assert out.ok, out
        return out.value

    return session, call


def _startup_s(n: int) -> tuple[float, tuple[str, ...]]:
    times = []
    layers: tuple[str, ...] = ()
    for _ in range(n):
        start = time.perf_counter()
        with SandboxSession([("m", TRIVIAL)], SPACE, seed=0, budget=10, limits=LIMITS) as session:
            session.start()
            times.append(time.perf_counter() - start)
            layers = session.layers
    return statistics.median(times), layers


def _per_run_ms(n: int) -> tuple[float, float]:
    """Median ms per inner run: a fresh forked worker (reload) and reuse of the same worker (a new load)."""
    stack = [("m", TRIVIAL), ("e", load_source("elite_crossover"))]
    fresh, reuse = [], []
    with SandboxSession(stack, SPACE, seed=0, budget=10, limits=LIMITS) as session:
        session.start()
        for i in range(n):
            start = time.perf_counter()
            loaded = session.reload(stack, seed=i, budget=10)
            fresh.append(time.perf_counter() - start)
            assert all(o.ok for o in loaded.values()), loaded
        for i in range(n):
            start = time.perf_counter()
            session._configure(stack, SPACE, i, 10)  # noqa: SLF001 - the reuse path, kept only for this comparison
            report = session._compile_all()  # noqa: SLF001
            assert session._load_active(report, charge=True), report  # noqa: SLF001
            assert all(o.ok for o in report.values()), report
            reuse.append(time.perf_counter() - start)
    return statistics.median(fresh) * 1000, statistics.median(reuse) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300, help="timed calls per variant")
    ap.add_argument("--starts", type=int, default=7, help="timed session start-ups")
    ap.add_argument("--runs", type=int, default=30, help="timed inner-run start-ups (fresh worker, reuse)")
    args = ap.parse_args(argv)
    header("sandbox cost: one hook call through the worker vs in-process; worker start-up; per inner run")
    trials = _trials(HISTORY)
    cases = {"trivial propose": (TRIVIAL, []),
             f"elite_crossover ({HISTORY} trials)": (load_source("elite_crossover"), trials)}
    w_trivial_us = 0.0
    print(f"{'hook':28} {'plain in-process':>17} {'restricted':>12} {'worker':>10} {'worker/restricted':>18}")
    for name, (source, history) in cases.items():
        plain = _in_process(source, restricted=False, trials=history)
        restricted = _in_process(source, restricted=True, trials=history)
        session, worker = _through_worker(source, history)
        try:
            for fn in (plain, restricted, worker):
                fn()  # warm
            p_us = _median_us(plain, args.calls)
            r_us = _median_us(restricted, args.calls)
            w_us = _median_us(worker, args.calls)
        finally:
            session.close()
        print(f"{name:28} {p_us:>14.1f} us {r_us:>9.1f} us {w_us:>7.1f} us {w_us / r_us:>17.1f}x")
        w_trivial_us = w_us if name == "trivial propose" else w_trivial_us
    start_s, layers = _startup_s(args.starts)
    print(f"worker start-up (spawn, warm-up, hardening, load): median {start_s * 1000:.0f} ms over {args.starts}")
    fresh_ms, reuse_ms = _per_run_ms(args.runs)
    print(f"per inner run, 2 mechanisms: clean worker (fork, harden, load) median {fresh_ms:.2f} ms; "
          f"reuse of one worker (load only) median {reuse_ms:.2f} ms; ratio {fresh_ms / reuse_ms:.1f}x "
          f"over {args.runs}; one trivial hook round trip {w_trivial_us:.0f} us")
    print(f"active layers: {', '.join(layers)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
