"""Overhead per trial of the ``python`` benchmark: a long-lived child per process vs a child per trial.

Both paths call the same trivial callable (``tests/data/bench_callable.py:plain``), so what is
measured is the overhead: the old path (one ``pyrunner.py`` process per trial, files in and out, as
before issue 13) and the persistent child (one JSON line each way). Subject and baseline run in the
same process; the script prints both and their ratio. The persistent child's first trial (its start
and import) is timed separately and left out of the per-trial figure.

    .venv/bin/python bench/python_benchmark.py [--trials N] [--baseline-trials N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _common import ROOT, header

from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.benchmarks.external import run_trial


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2000, help="trials through the persistent child")
    ap.add_argument("--baseline-trials", type=int, default=40, help="trials with a child per trial")
    args = ap.parse_args(argv)
    header("python benchmark: overhead per trial, persistent child vs a child per trial")
    data = str(ROOT / "tests" / "data")
    bench = get_benchmark("python", {"callable": "bench_callable:plain", "params": ["x:float:0:1"],
                                     "pythonpath": [data], "workdir": data, "timeout_s": 30.0})
    objective = bench.objective(bench.instances()[0], 0)
    start = time.perf_counter()
    objective.evaluate({"x": 0.5})
    first = time.perf_counter() - start
    per_trial = []
    for k in range(args.trials):
        t0 = time.perf_counter()
        value = objective.evaluate({"x": (k % 97) / 97})
        per_trial.append(time.perf_counter() - t0)
        assert value == (k % 97) / 97
    old = []
    argv = [sys.executable, str(ROOT / "judge" / "benchmarks" / "pyrunner.py"), "bench_callable:plain", data]
    for k in range(args.baseline_trials):
        t0 = time.perf_counter()
        result = run_trial(argv, {"config": {"x": k / 100}, "instance": "i0", "seed": 0}, 30.0, data)
        old.append(time.perf_counter() - t0)
        assert result["score"] == k / 100
    new_ms, old_ms = 1000 * statistics.median(per_trial), 1000 * statistics.median(old)
    print(f"persistent child: first trial (start + import) {1000 * first:.1f} ms; then median {new_ms:.3f} ms "
          f"per trial (mean {1000 * statistics.fmean(per_trial):.3f} ms, p95 "
          f"{1000 * sorted(per_trial)[int(0.95 * len(per_trial))]:.3f} ms) over {args.trials} trials")
    print(f"child per trial (before): median {old_ms:.1f} ms per trial over {args.baseline_trials} trials")
    print(f"overhead ratio (before / persistent): {old_ms / new_ms:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
