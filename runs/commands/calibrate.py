"""``bilevel calibrate [--runs N] [--spec F]``: the judge's false-keep rate on the null benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path

from bilevel.runs.calibrate import BENCHMARK, CalibrationRun, describe, run_calibration
from bilevel.runs.commands import add_store_argument
from bilevel.runs.progress import Progress
from bilevel.runs.spec import SpecError, load_spec
from bilevel.runs.store import Store

NAME = "calibrate"
HELP = ("A/A check of the judge: N outer runs on the null benchmark (nothing can help); prints "
        "false_keep_rate with its interval and the runs that kept something")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=10, help="outer runs (default: %(default)s)")
    parser.add_argument("--spec", type=Path, help="TOML spec whose judge, panels and budgets to calibrate "
                                                  "(its benchmark is replaced by the null benchmark)")
    parser.add_argument("--workers", type=int, help="inner runs in parallel")
    add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    if args.runs < 1:
        raise SpecError(f"--runs must be at least 1, got {args.runs}")
    overrides: dict[str, dict[str, object]] = {"run": {"benchmark": BENCHMARK}}
    if args.workers is not None:
        overrides["run"]["workers"] = args.workers
    spec = load_spec(args.spec, overrides)
    store = Store.in_dir(args.store)
    settings = ", ".join(f"{k} {v}" for k, v in describe(spec).items())
    print(f"calibrate: {args.runs} outer runs on the {BENCHMARK} benchmark ({settings})", flush=True)

    def done(r: CalibrationRun) -> None:
        print(f"run: {r.run_id} kept {r.kept} of {r.candidates} candidates", flush=True)

    with Progress() as progress:
        result = run_calibration(store, spec, args.runs, progress.stage, progress.evaluation, done)
    print("--- calibration ---")
    for line in result.lines():
        print(line)
    return 0
