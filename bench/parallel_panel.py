"""Bench (3): one full validation panel serially, on the process pool (2 workers) and on Ray (2 CPUs).

The panel is the default spec's validation panel (16 BBOB instances x 2
seeds, 60 trials per inner run) and the stack two built-in mechanisms, the
shape of one verdict's second stage. Each executor evaluates the panel
twice: ``cold`` includes starting its workers (spawned processes import
numpy, optuna and cocoex; Ray starts its node), ``warm`` is the second pass
with workers running. Results are checked equal across executors.

    .venv/bin/python bench/parallel_panel.py [--workers 2] [--skip-ray]
"""

from __future__ import annotations

import argparse
import os
import sys

from _common import builtin_stack, header, progress, timed

from bilevel.judge.panels import PanelEntry
from bilevel.outer.evaluator import BenchmarkRef, PanelEvaluator
from bilevel.outer.executors import Executor, InProcessExecutor, ProcessExecutor, RayExecutor
from bilevel.runs.driver import inner_settings, judge_setup
from bilevel.runs.spec import load_spec


def _pass(executor: Executor, entries: list[PanelEntry], workers: int) -> tuple[float, float, list[float]]:
    spec = load_spec()
    ev = PanelEvaluator(BenchmarkRef.of("bbob", spec["benchmark"]), inner_settings(spec), executor=executor)
    stack = builtin_stack(("tabu", "ucb_bandit"))
    try:
        cold, first = timed(lambda: ev.evaluate_many(stack, entries))
        warm, second = timed(lambda: ev.evaluate_many(stack, entries))
    finally:
        ev.close()
    scores = [r.primary for r in first]
    if scores != [r.primary for r in second]:
        raise SystemExit("two passes of the same panel differ: the evaluation is not deterministic")
    return cold, warm, scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--entries", type=int, default=0, help="use only the first N panel entries (0: all)")
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args(argv)
    header(f"parallel speed-up: a validation panel serially vs process pool vs Ray ({args.workers} workers)")
    entries = list(judge_setup(load_spec()).panels.validation)
    if args.entries:
        entries = entries[:args.entries]
    print(f"panel: {len(entries)} inner runs of 60 trials, stack tabu+ucb_bandit")
    progress("serial (in-process)")
    serial_cold, serial, ref = _pass(InProcessExecutor(), entries, 1)
    rows = [("serial (inprocess)", serial_cold, serial)]
    progress("process pool")
    p_cold, p_warm, p_scores = _pass(ProcessExecutor(args.workers), entries, args.workers)
    rows.append((f"process pool, {args.workers} workers", p_cold, p_warm))
    if p_scores != ref:
        raise SystemExit("the process pool's scores differ from the serial ones")
    if not args.skip_ray:
        progress("ray (local, starts its node)")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        r_cold, r_warm, r_scores = _pass(RayExecutor(args.workers), entries, args.workers)
        rows.append((f"ray, {args.workers} CPUs", r_cold, r_warm))
        if r_scores != ref:
            raise SystemExit("Ray's scores differ from the serial ones")
    print(f"{'executor':28s} {'cold s':>8s} {'warm s':>8s} {'speed-up cold':>14s} {'speed-up warm':>14s}")
    for name, cold, warm in rows:
        print(f"{name:28s} {cold:8.2f} {warm:8.2f} {serial_cold / cold:13.2f}x {serial / warm:13.2f}x")
    print("scores identical on every executor: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
