"""``bilevel judge FILE... [--benchmark B] [--spec F] [--store DIR]``: your mechanisms against the baseline.

The files become one stack (in the order given) on the spec's base search
config; the frozen judge decides on it exactly as it decides on an author's
candidate (conformance check, cascade, validation interval, activation,
faults, and, when it passes, confirmation on generation g0's fresh panel), then the stack and the baseline are compared on the sealed test
panel. Everything is recorded as a run in the store (``show`` and ``runs``
list it). Prints a grep-able block.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bilevel.judge.evaluate import Comparison, EvalResult, Judge
from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.authors.base import Candidate
from bilevel.outer.evaluator import BenchmarkRef, PanelEvaluator
from bilevel.outer.executors import ExecutorSpec, make_executor
from bilevel.runs.commands import add_store_argument
from bilevel.runs.driver import check_new_run, inner_settings, record_run, with_paths
from bilevel.runs.failures import FailureWatch, failed_trials_line, failure_counts
from bilevel.runs.progress import Progress
from bilevel.runs.spec import load_spec
from bilevel.runs.store import Store
from bilevel.runs.terminal import say
from bilevel.runs.user_library import read_mechanisms

NAME = "judge"
HELP = "judge the stack of your mechanism files against the baseline with the frozen judge"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="mechanism source files (one stack)")
    parser.add_argument("--benchmark", help="benchmark name (default: the spec's, else bbob)")
    parser.add_argument("--spec", type=Path, help="TOML spec file (panels, judge thresholds, inner budget)")
    parser.add_argument("--workers", type=int, help="evaluation processes")
    parser.add_argument("--yes", action="store_true",
                        help="go ahead when a priced model's estimate is over $5 and no [llm] *_max_usd cap is set")
    add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"run": {}}
    if args.benchmark:
        overrides["run"]["benchmark"] = args.benchmark
    if args.workers:
        overrides["run"]["workers"] = args.workers
    spec = with_paths(load_spec(args.spec, overrides), args.spec)
    settings = inner_settings(spec)
    mechanisms = read_mechanisms(args.files, settings.limits)
    from bilevel.runs.estimate import gate
    from bilevel.runs.spec import RunSpec, merge

    setup = check_new_run(spec, estimate=False)  # gated below as what it is: one candidate, no author
    one = RunSpec(merge(spec.to_json(), {"run": {"generations": 1, "candidates": 1, "level15": False,
                                                 "author": "offline"}}, "judge"))
    gate(one, setup.benchmark.space(setup.benchmark.instances()[0]), setup.panels, settings, args.yes)
    store = Store.in_dir(args.store)
    run_id = record_run(store, spec, setup, mechanisms)
    print(f"run: {run_id}", flush=True)
    recorder = store.recorder(run_id)
    candidate, baseline = Stack(tuple(mechanisms), settings.search), Stack((), settings.search)
    run_cfg = spec["run"]
    executor = make_executor(ExecutorSpec(run_cfg["executor"], run_cfg["workers"], run_cfg["address"]))
    with Progress() as progress:
        watch = FailureWatch(recorder, baseline.key, len(setup.panels.validation), progress.failures)
        evaluator = PanelEvaluator(BenchmarkRef.of(run_cfg["benchmark"], spec["benchmark"]), settings,
                                   cache=watch, workers=run_cfg["workers"], on_eval=progress.evaluation,
                                   executor=executor)
        try:
            judge = Judge(setup.panels.validation, setup.panels.stage1(setup.thresholds.stage1_pairs),
                          setup.thresholds, setup.manifest.hash, evaluator,
                          setup.panels.confirmation if setup.panels.confirmation_instances else None)
            progress.stage("judging the stack against the baseline on the validation panel")
            verdict = judge.verdict(candidate, baseline)
            if verdict.keep and judge.confirms:  # as a generation's winner: it must hold on fresh pairs
                progress.stage("confirming the stack on the fresh confirmation panel (g0's)")
                verdict = judge.confirm(0, candidate, baseline, verdict)
            progress.stage("the stack against the baseline on the sealed test panel")
            test = judge.compare(candidate, baseline, setup.panels.test)
            full = verdict.stage != "stage1"
            used = setup.panels.validation if full else setup.panels.stage1(setup.thresholds.stage1_pairs)
            val_runs = evaluator.evaluate_many(candidate, used)  # already evaluated: the store answers
        finally:
            evaluator.close()
    for m in mechanisms:
        recorder.record_mechanism(m, "user", 0, ())
    operation = "judge " + " + ".join(str(f) for f in args.files)
    recorder.record_candidate(0, 0, Candidate(candidate, operation, "user", tuple(mechanisms)), baseline.key)
    recorder.record_verdict(0, 0, candidate.key, verdict)
    fields = _fields(run_id, spec["run"]["benchmark"], verdict.to_json(), test, mechanisms, val_runs)
    fields["failed_trials"] = failed_trials_line(failure_counts(store, run_id))
    fields["manifest"] = setup.manifest.hash[:16]
    recorder.record_event("end:judge", "run_end", {**fields, "stopped": "judged", "kept": int(verdict.keep)})
    print("--- judge ---")
    for key, value in fields.items():
        say(f"{key}: {value}")
    sys.stdout.flush()
    return 0


def _num(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:+.4f}"


def _fields(run_id: str, benchmark: str, v: dict[str, Any], test: Comparison, mechanisms: Sequence[Mechanism],
            val_runs: Sequence[EvalResult]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run": run_id, "benchmark": benchmark,
        "stack": " + ".join(m.name for m in mechanisms),
        "verdict": "kept" if v["keep"] else "rejected",
        "stage": v["stage"],
        "reason": v["reason"],
        "val_improvement": _num(v["mean_improvement"]),
        "val_ci": f"[{_num(v['ci_low'])}, {_num(v['ci_high'])}]",
        "val_ci_unit": v.get("ci_unit", "pair"),
        "val_pairs": v["n_pairs"],
        "test_improvement": _num(test.mean),
        "test_ci": f"[{_num(test.ci_low)}, {_num(test.ci_high)}]",
        "test_ci_unit": test.unit,
        "test_pairs": test.n_pairs,
    }
    trials = sum(r.n_trials for r in val_runs) or 1
    for m in mechanisms:
        changed = sum(r.changed_by.get(m.id, 0) for r in val_runs)
        fired = sum(r.fired_by.get(m.id, 0) for r in val_runs)
        faults = sum(1 for r in val_runs for f in r.faults if f.get("mechanism") == m.id)
        out[f"mechanism {m.name}"] = (f"activation {changed / trials:.1%} of validation trials changed "
                                      f"({changed}/{trials}), fired in {fired / trials:.1%}, faults {faults}")
    return out
