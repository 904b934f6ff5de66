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
from collections.abc import Sequence
from functools import partial

from _common import builtin_stack, header, progress, timed

from bilevel.inner.loop import DEFAULT_POOL, InnerLoop, InnerSettings, MechanismSource, SessionPool, run_inner
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

FLOOR = ("3 mechanisms, counterfactual off", "3 do-nothing mechanisms", "3 do-nothing mechanisms, counterfactual off")
"""The runs printed under "the floor", in this order."""


@dataclasses.dataclass(frozen=True)
class Measured:
    """One timed inner run: seconds, hook calls (dry calls not counted) and exchanges with the worker."""

    seconds: float
    hook_calls: int
    round_trips: int


def measure(objective: BBOBObjective, sources: Sequence[MechanismSource], settings: InnerSettings, seed: int) -> Measured:
    loop = InnerLoop(objective, sources, settings, seed)
    seconds, result = timed(loop.run)
    return Measured(seconds, sum(len(t.hooks) for t in result.trials), loop.round_trips)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dimension", type=int, default=5)
    args = ap.parse_args(argv)
    header("mechanism overhead: inner run with 3 built-in mechanisms vs none")
    objective = BBOBObjective(8, args.dimension, 1)
    settings = InnerSettings(budget=args.trials)
    mechanisms = builtin_stack(MECHANISMS).sources()
    nothing = [(f"nothing{i}", NOTHING) for i in range(3)]
    off = dataclasses.replace(settings, counterfactual=False)
    runs = {"3 mechanisms": (mechanisms, settings),
            "with predicted reviews": (mechanisms, dataclasses.replace(settings, speculate=True)),
            FLOOR[0]: (mechanisms, off), FLOOR[1]: (nothing, settings), FLOOR[2]: (nothing, off)}
    plain: list[float] = []
    seen: dict[str, list[Measured]] = {label: [] for label in runs}
    cold_s, _ = timed(lambda: run_inner(objective, mechanisms, settings, 999, pool=SessionPool()))
    run_inner(objective, mechanisms, settings, 998)  # warm the shared pool's worker
    for r in range(args.repeats):
        progress(f"repeat {r + 1}/{args.repeats}")
        plain.append(timed(partial(run_inner, objective, [], settings, r))[0])
        for label, (sources, how) in runs.items():
            seen[label].append(measure(objective, sources, how, r))
    DEFAULT_POOL.close()
    report(args, statistics.median(plain), cold_s, seen)
    return 0


def report(args: argparse.Namespace, p: float, cold_s: float, seen: dict[str, list[Measured]]) -> None:
    """Print the medians per trial; ratios are against the bare run ``p`` of the same repeats."""
    n = args.trials

    def med(label: str, field: str) -> float:
        return statistics.median(getattr(x, field) for x in seen[label])

    m, calls = med("3 mechanisms", "seconds"), med("3 mechanisms", "hook_calls")
    print(f"mechanisms: {'+'.join(MECHANISMS)}; BBOB f8 d{args.dimension}; {n} trials; median of {args.repeats}")
    print(f"no mechanisms:   {p / n * 1e3:8.3f} ms/trial")
    print(f"3 mechanisms:    {m / n * 1e3:8.3f} ms/trial  (warm sandbox worker)")
    print(f"cold (new worker): {cold_s / n * 1e3:6.3f} ms/trial  (includes starting the worker)")
    print(f"hook calls/trial:  {calls / n:6.2f}  (dry calls of the counterfactual check not counted)")
    print(f"round trips/trial: {med('3 mechanisms', 'round_trips') / n:6.2f}  "
          "(exchanges with the worker, counted at the session)")
    print(f"overhead:        {(m - p) / n * 1e3:8.3f} ms/trial, {(m - p) / calls * 1e3:.3f} ms per hook call")
    print(f"ratio (3 mechanisms / none): {m / p:.1f}x")
    u = med("with predicted reviews", "seconds")
    print(f"with predicted reviews: {u / n * 1e3:6.3f} ms/trial, round trips/trial "
          f"{med('with predicted reviews', 'round_trips') / n:.2f}, ratio {u / p:.1f}x  (InnerSettings.speculate=True)")
    print("the floor (what the machinery costs whatever the mechanisms compute):")
    for label in FLOOR:
        f = med(label, "seconds")
        print(f"  {label + ':':44s} {f / n * 1e3:6.3f} ms/trial, ratio {f / p:.1f}x, "
              f"hook calls/trial {med(label, 'hook_calls') / n:.2f}")

if __name__ == "__main__":
    sys.exit(main())
