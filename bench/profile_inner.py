"""Where an inner run's time goes: cProfile of the host side of inner runs with built-in mechanisms.

The sandbox worker is another process: time the host spends waiting for it
shows up as ``select.poll``/``select.select`` (or the pipe reads) here. Prints the
top functions by own time and by cumulative time, and the share spent
waiting on the worker.

    .venv/bin/python bench/profile_inner.py [--runs 10] [--trials 100] [--top 15]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys

from _common import builtin_stack, header, timed

from bilevel.inner.loop import DEFAULT_POOL, InnerSettings, run_inner
from bilevel.judge.benchmarks.bbob import BBOBObjective

MECHANISMS = ("tabu", "ucb_bandit", "trust_region")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args(argv)
    header("profile: host side of inner runs with 3 built-in mechanisms")
    objective = BBOBObjective(8, 5, 1)
    settings = InnerSettings(budget=args.trials)
    sources = builtin_stack(MECHANISMS).sources()
    run_inner(objective, sources, settings, 0)  # warm worker and caches
    prof = cProfile.Profile()
    total, _ = timed(lambda: [prof.runcall(run_inner, objective, sources, settings, s) for s in range(args.runs)])
    DEFAULT_POOL.close()
    stats = pstats.Stats(prof)
    waiting = sum(tt for (file, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items()  # type: ignore[attr-defined]
                  if name in ("poll", "select", "<method 'poll' of 'select.poll' objects>")
                  or "select" in name or "readline" in name or name.startswith("<built-in method posix.read"))
    print(f"{args.runs} runs x {args.trials} trials: {total:.2f} s, {total / args.runs / args.trials * 1e3:.3f} ms/trial")
    print(f"waiting on the sandbox worker (select/read): {waiting:.2f} s = {waiting / total:.0%} of the time")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.top)
        body = out.getvalue()
        print(f"--- top {args.top} by {key} ---")
        print(body[body.index("ncalls"):].rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
