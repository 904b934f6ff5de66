"""Bench (2): an inner run of 100 trials with three built-in mechanisms vs the same run without them.

Both runs use the same BBOB instance, seeds and base proposer, in this
process. The mechanisms run in the sandbox worker (reused between runs, as
the evaluator reuses it); one cold run that starts a worker is timed apart.
Prints the time per trial, the mechanisms' overhead per trial and per hook
call, the exchanges with the worker per trial (``round trips/trial:``) and the ratio, then the same
runs without the predicted reviews (``inner.speculation``: fewer exchanges for more host CPU), then the
floor of the machinery: the same three mechanisms without the counterfactual check
(``InnerSettings.counterfactual=False``), and three mechanisms whose guide, review and observe do
nothing (return None), with and without it. The cost of one sandboxed call against the same function
in-process is issue 6's ``bench/sandbox_cost.py``.

    .venv/bin/python bench/mechanism_overhead.py [--trials 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from functools import partial

from _common import builtin_stack, header, progress, timed

from bilevel.inner.loop import DEFAULT_POOL, InnerLoop, InnerSettings, SessionPool, run_inner
from bilevel.judge.benchmarks.bbob import BBOBObjective

MECHANISMS = ("tabu", "ucb_bandit", "trust_region")

NOTHING = """def guide(ctx, state):
    return None


def review(ctx, state, candidate):
    return None


def observe(ctx, state, trial):
    return None
"""
"""A mechanism that does nothing: what is left of its cost is the machinery's (sandbox, protocol, bookkeeping)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dimension", type=int, default=5)
    args = ap.parse_args(argv)
    header("mechanism overhead: inner run with 3 built-in mechanisms vs none")
    objective = BBOBObjective(8, args.dimension, 1)
    settings = InnerSettings(budget=args.trials)
    stack = builtin_stack(MECHANISMS)
    plain: list[float] = []
    mech: list[float] = []
    calls: list[int] = []
    trips: list[int] = []
    predicted: list[float] = []  # the same runs with the predicted reviews (InnerSettings.speculate)
    predicted_trips: list[int] = []
    floor: dict[str, list[float]] = {}
    floor_calls: dict[str, list[int]] = {}
    nothing = [(f"nothing{i}", NOTHING) for i in range(3)]
    off = dataclasses.replace(settings, counterfactual=False)
    floor_runs = {"3 mechanisms, counterfactual off": (stack.sources(), off),
                  "3 do-nothing mechanisms": (nothing, settings),
                  "3 do-nothing mechanisms, counterfactual off": (nothing, off)}
    on = dataclasses.replace(settings, speculate=True)
    cold_s, _ = timed(lambda: run_inner(objective, stack.sources(), settings, 999, pool=SessionPool()))
    run_inner(objective, stack.sources(), settings, 998)  # warm the shared pool's worker
    for r in range(args.repeats):
        progress(f"repeat {r + 1}/{args.repeats}")
        t0, _ = timed(partial(run_inner, objective, [], settings, r))
        loop = InnerLoop(objective, stack.sources(), settings, r)
        t1, res = timed(loop.run)
        plain.append(t0)
        mech.append(t1)
        calls.append(sum(len(t.hooks) for t in res.trials))
        trips.append(loop.round_trips)
        loop = InnerLoop(objective, stack.sources(), on, r)
        t2, _ = timed(loop.run)
        predicted.append(t2)
        predicted_trips.append(loop.round_trips)
        for label, (sources, how) in floor_runs.items():
            t3, out = timed(InnerLoop(objective, sources, how, r).run)
            floor.setdefault(label, []).append(t3)
            floor_calls.setdefault(label, []).append(sum(len(t.hooks) for t in out.trials))
    DEFAULT_POOL.close()
    p, m = statistics.median(plain), statistics.median(mech)
    n = args.trials
    per_call = (m - p) / statistics.median(calls) * 1e3
    print(f"mechanisms: {'+'.join(MECHANISMS)}; BBOB f8 d{args.dimension}; {n} trials; median of {args.repeats}")
    print(f"no mechanisms:   {p / n * 1e3:8.3f} ms/trial")
    print(f"3 mechanisms:    {m / n * 1e3:8.3f} ms/trial  (warm sandbox worker)")
    print(f"cold (new worker): {cold_s / n * 1e3:6.3f} ms/trial  (includes starting the worker)")
    print(f"hook calls/trial:  {statistics.median(calls) / n:6.2f}  (dry calls of the counterfactual check not counted)")
    print(f"round trips/trial: {statistics.median(trips) / n:6.2f}  (exchanges with the worker, counted at the session)")
    print(f"overhead:        {(m - p) / n * 1e3:8.3f} ms/trial, {per_call:.3f} ms per hook call")
    print(f"ratio (3 mechanisms / none): {m / p:.1f}x")
    u = statistics.median(predicted)
    print(f"with predicted reviews: {u / n * 1e3:6.3f} ms/trial, round trips/trial "
          f"{statistics.median(predicted_trips) / n:.2f}, ratio {u / p:.1f}x  (InnerSettings.speculate=True)")
    print("the floor (what the machinery costs whatever the mechanisms compute):")
    for label, times in floor.items():
        f = statistics.median(times)
        print(f"  {label + ':':44s} {f / n * 1e3:6.3f} ms/trial, ratio {f / p:.1f}x, "
              f"hook calls/trial {statistics.median(floor_calls[label]) / n:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
