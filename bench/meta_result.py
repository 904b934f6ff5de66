"""The meta-result: a full bilevel run on BBOB, then its kept stack against the samplers users would
otherwise pick, on a sealed test split that no verdict saw.

1. Runs ``bilevel run`` on the embedded defaults (offline author, BBOB
   functions 1 2 3 6 8 10 11 13 15 17 20 21, dimensions 2 and 5, instance ids 1-15) into a
   temporary store (or ``--store``).
2. Builds a sealed test benchmark from BBOB functions, dimensions and
   instance ids the run never touched: every function outside the run's
   twelve, dimensions 3 and 10, instance ids from 16 on.
3. Runs every method through the same inner loop at the run's budget, on
   the same (instance, seed) pairs: the kept stack, the baseline inner loop
   (greedy perturbation, no mechanisms), random search, optuna TPE and
   optuna CMA-ES (optuna's samplers with their settings pinned, asked and
   told by the inner loop's proposer).
4. Prints the mean log10 regret (lower is better) of each method with its
   95% bootstrap interval, the paired difference to the kept stack with its
   interval (positive: the kept stack is better), the share of pairs the
   kept stack wins, the anytime area and the share of targets solved.

    .venv/bin/python bench/meta_result.py [--outer-seeds 5] [--instances-per-problem 6] [--workers 2] [--out table.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from _common import header, progress, timed
from meta_study import (
    by_function,
    function_means,
    function_rows,
    method_table,
    run_rows,
    seed_result,
    study_rows,
    study_summary,
)

from bilevel.inner.search_config import SearchConfig, Strategy
from bilevel.judge.benchmarks.bbob import DEFAULT_DIMENSIONS, DEFAULT_FUNCTIONS, DEFAULT_INSTANCE_IDS
from bilevel.judge.evaluate import EvalResult
from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.evaluator import BenchmarkRef, PanelEvaluator
from bilevel.outer.executors import ExecutorSpec, make_executor
from bilevel.runs.driver import create_run, execute, inner_settings
from bilevel.runs.spec import RunSpec, load_spec
from bilevel.runs.store import Store

TEST_DIMENSIONS = (3, 10)
# the run's own summary figures kept per outer seed (its confirmation/selection/test panels, against the baseline)
RUN_KEYS = ("candidates", "kept", "stack", "val_panel", "val_improvement", "val_ci", "val_ci_unit", "val_pairs",
            "selection_improvement", "selection_ci", "selection_ci_unit", "selection_pairs", "test_improvement",
            "test_ci", "test_ci_unit", "test_pairs", "failed_trials", "manifest", "wall_s")


def kept_stack(store: Store, run_id: str) -> Stack:
    """The incumbent at the end of the run, rebuilt from the store (sources by content address)."""
    ends = store.events(run_id, "generation_end")
    if not ends:
        raise SystemExit(f"run {run_id} finished no generation")
    data = ends[-1]["incumbent_stack"]
    mechs = tuple(Mechanism(m["name"], store.mechanism(run_id, m["id"]).source) for m in data["mechanisms"])
    return Stack(mechs, SearchConfig.from_json(data["search"]))


def sealed_split(spec: RunSpec, seeds_per_instance: int, instances_per_problem: int, max_functions: int = 0,
                 ) -> tuple[dict[str, list[int]], list[PanelEntry]]:
    """BBOB options and (instance, seed) pairs disjoint from the run's functions, dimensions and ids."""
    opts = spec["benchmark"]
    seen_f = set(opts.get("functions", DEFAULT_FUNCTIONS))
    seen_d = set(opts.get("dimensions", DEFAULT_DIMENSIONS))
    first_id = max(opts.get("instance_ids", DEFAULT_INSTANCE_IDS)) + 1
    functions = [f for f in range(1, 25) if f not in seen_f][:max_functions or None]
    dims = [d for d in TEST_DIMENSIONS if d not in seen_d]
    ids = list(range(first_id, first_id + instances_per_problem))
    options = {"functions": functions, "dimensions": dims, "instance_ids": ids}
    entries: list[PanelEntry] = []
    for f in functions:
        for d in dims:
            for i in ids:
                for _ in range(seeds_per_instance):
                    # a seed of its own for every pair, outside the run's panel seed ranges (0-29999)
                    entries.append(PanelEntry(f"bbob-f{f}-d{d}-i{i}", f"f{f}", 30_000 + len(entries)))
    return options, entries


def _run_one(spec: RunSpec, store_dir: Path | None) -> tuple[str, Stack, dict[str, Any], float]:
    """One whole bilevel run: (run id, kept stack, summary, seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.in_dir(store_dir or Path(tmp))
        run_id = create_run(store, spec)
        progress(f"bilevel run {run_id} (seed {spec['run']['seed']}, salt {spec['panels']['salt']!r})")
        run_s, summary = timed(lambda: execute(store, run_id, progress=progress))
        kept = kept_stack(store, run_id)
        store.close()
    return run_id, kept, dict(summary.fields), run_s


def _seed_spec(args: argparse.Namespace, k: int) -> RunSpec:
    """The spec of outer run ``k``: seed ``--seed + k``; panel salt the default's for k = 0, else suffixed."""
    base = load_spec(args.spec)
    overrides: dict[str, dict[str, object]] = {"run": {"seed": args.seed + k, "workers": args.workers,
                                                       "executor": args.executor}}
    overrides["panels"] = {"split": args.split} if args.split else {}
    if k:
        overrides["panels"]["salt"] = f"{base['panels']['salt']}-outer{k}"
    if args.generations:
        overrides["run"]["generations"] = args.generations
    if args.budget:
        overrides["inner"] = {"budget": args.budget}
    return load_spec(args.spec, overrides)


def _evaluate(evaluator: PanelEvaluator, stack: Stack, entries: list[PanelEntry],
              on_results: Callable[[list[EvalResult]], None] | None = None,
              ) -> tuple[np.ndarray, tuple[float, float], float]:
    t, results = timed(partial(evaluator.evaluate_many, stack, entries, on_results is not None))
    if on_results is not None:
        on_results(results)
    extra = (float(np.mean([r.subscores["auc"] for r in results])),
             float(np.mean([r.subscores["solved"] for r in results])))
    return np.array([r.primary for r in results]), extra, t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, help="run spec (default: the embedded defaults)")
    ap.add_argument("--max-functions", type=int, default=0, help="use only the first N unseen functions (0: all)")
    ap.add_argument("--store", type=Path, help="run store directory (default: a temporary one; one run only)")
    ap.add_argument("--seed", type=int, default=0, help="the (first) bilevel run's seed")
    ap.add_argument("--outer-seeds", type=int, default=1,
                    help="how many bilevel runs (seeds --seed, --seed+1, ...; each after the first with its own "
                         "panel salt), each kept stack scored on the same sealed split")
    ap.add_argument("--split", choices=("instance", "group"),
                    help="override the runs' [panels] split (default: the spec's; \"group\" validates and tests "
                         "on BBOB functions the search panel never showed)")
    ap.add_argument("--generations", type=int, help="override the run's generations")
    ap.add_argument("--budget", type=int, help="override the inner budget (trials per inner run)")
    ap.add_argument("--seeds-per-instance", type=int, default=1,
                    help="seeds per sealed (function, dimension, instance); default 1")
    ap.add_argument("--instances-per-problem", type=int, default=6,
                    help="instance ids per sealed (function, dimension), from the first id the run never used; "
                         "default 6: 12 pairs per function, so each function's mean (the unit the intervals "
                         "resample) is not one instance's luck")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executor", default="process", choices=("inprocess", "process", "ray"))
    ap.add_argument("--out", type=Path, help="also write the tables (markdown) here")
    ap.add_argument("--json", type=Path, help="also write every method's per-pair scores (JSON) here")
    ap.add_argument("--plot", type=Path, help="also draw the first run's table as a figure (PNG, with matplotlib)")
    ap.add_argument("--coco", type=Path, metavar="DIR",
                    help="also write every method's runs on the sealed split as COCO data into DIR/<method> "
                         "(for `python -m cocopp DIR/*`)")
    args = ap.parse_args(argv)
    if args.outer_seeds < 1:
        ap.error("--outer-seeds must be at least 1")
    if args.store and args.outer_seeds > 1:
        ap.error("--store keeps one run: use it with --outer-seeds 1")
    header("meta-result: kept stack vs baseline, random, optuna TPE, optuna CMA-ES on a sealed BBOB split")

    runs = []
    for k in range(args.outer_seeds):
        spec = _seed_spec(args, k)
        run_id, kept, summary, run_s = _run_one(spec, args.store)
        print(f"outer seed {args.seed + k}: run {run_id}, {run_s:.0f} s, kept {summary.get('kept', '?')}: "
              f"{kept.describe()}")
        print("  " + "; ".join(f"{key} {summary[key]}" for key in RUN_KEYS if key in summary))
        runs.append({"seed": args.seed + k, "salt": spec["panels"]["salt"], "split": spec["panels"]["split"],
                     "run_id": run_id, "stack": kept, "kept_count": summary.get("kept"), "run_s": run_s,
                     "summary": {key: summary[key] for key in RUN_KEYS if key in summary}})

    spec = _seed_spec(args, 0)
    settings = inner_settings(spec)
    options, entries = sealed_split(spec, args.seeds_per_instance, args.instances_per_problem,
                                    args.max_functions)
    print(f"sealed test split: functions {options['functions']}, dimensions {options['dimensions']}, "
          f"instance ids {options['instance_ids']}; {len(entries)} (instance, seed) pairs, "
          f"{len({e.seed for e in entries})} seeds; budget {settings.budget} trials per run")
    others = {
        "baseline inner loop": Stack((), settings.search),
        "random search": Stack((), SearchConfig(strategy=Strategy.RANDOM)),
        "optuna TPE": Stack((), SearchConfig(strategy=Strategy.TPE)),
        "optuna CMA-ES": Stack((), SearchConfig(strategy=Strategy.CMAES)),
    }
    scores: dict[str, np.ndarray] = {}
    extra: dict[str, tuple[float, float]] = {}
    seconds: dict[str, float] = {}
    executor = make_executor(ExecutorSpec(args.executor, args.workers))  # type: ignore[arg-type]
    evaluator = PanelEvaluator(BenchmarkRef.of("bbob", options), settings, executor=executor,
                               on_eval=lambda d, n: progress(f"{d}/{n}") if d % 24 == 0 or d == n else None)
    by_key: dict[str, tuple[np.ndarray, tuple[float, float], float]] = {}
    try:
        for name, stack in others.items():
            progress(f"{name} on the sealed split")
            by_key[stack.key] = _evaluate(evaluator, stack, entries, coco_writer(args.coco, name))
            scores[name], extra[name], seconds[name] = by_key[stack.key]
        for r in runs:
            stack = r["stack"]
            if stack.key not in by_key:  # a run that kept nothing scores exactly as the baseline inner loop
                progress(f"kept stack of outer seed {r['seed']} on the sealed split")
                by_key[stack.key] = _evaluate(evaluator, stack, entries,
                                              coco_writer(args.coco, f"kept stack seed {r['seed']}"))
            elif args.coco is not None:
                print(f"COCO data: the kept stack of outer seed {r['seed']} is an evaluated method's stack "
                      "(nothing kept): no folder of its own")
            r["scores"], r["extra"], r["seconds"] = by_key[stack.key]
    finally:
        evaluator.close()

    first = runs[0]
    scores = {"kept stack": first["scores"], **scores}
    extra = {"kept stack": first["extra"], **extra}
    seconds = {"kept stack": first["seconds"], **seconds}
    rows = method_table(scores, extra, seconds, entries) + function_rows(scores, entries)
    print(f"outer seed {first['seed']} (the default run):")
    print("\n".join(rows))
    per_seed = [seed_result(r, scores, entries) for r in runs]
    study = study_rows(per_seed, runs, scores, entries) if len(runs) > 1 else []
    study = run_rows(per_seed) + study
    if study:
        print("\n".join(study))
    if args.out:
        args.out.write_text("\n".join(rows + [""] + study) + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({
            "pairs": [e.key for e in entries], "kept": first["stack"].describe(),
            "scores": {k: v.tolist() for k, v in scores.items()},
            "auc_solved": {k: list(v) for k, v in extra.items()}, "seconds": seconds,
            "seeds": per_seed, "study": study_summary(runs, scores, entries) if len(runs) > 1 else None,
        }, indent=1))
    if args.plot:
        plot(scores, entries, args.plot, first["stack"].describe())
        print(f"figure: {args.plot}")
    return 0


def coco_writer(directory: Path | None, method: str) -> Callable[[list[EvalResult]], None] | None:
    """``--coco DIR``: a callback that writes one method's traced runs as COCO data (cocoex.Observer) into
    ``DIR/<method>``, the same format as ``bilevel export RUN --coco``; None without ``--coco``."""
    if directory is None:
        return None
    from bilevel.runs.coco_export import coco_runs, write_coco_algorithm

    def write(results: list[EvalResult]) -> None:
        runs, skipped = coco_runs(results)
        path = write_coco_algorithm(directory, method, runs, f"bench/meta_result.py: {method}, sealed BBOB split")
        print(f"COCO data: {path} ({len(runs)} runs" + (f", {skipped} failed trials left out)" if skipped else ")"))

    return write


def plot(scores: dict[str, np.ndarray], entries: list[PanelEntry], path: Path, kept: str) -> None:
    """Left: each method's mean log10 regret with its 95% interval, per dimension and overall.
    Middle: the paired difference to the kept stack (right of zero: the kept stack is better).
    Right: that difference per sealed function (mean over its pairs): where the mean comes from."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit("--plot needs matplotlib (a dependency of bilevel): pip install -e .") from exc
    names = list(scores)
    dims = sorted({int(e.instance.split("-d")[1].split("-")[0]) for e in entries})
    dim_of = np.array([int(e.instance.split("-d")[1].split("-")[0]) for e in entries])
    fig, (left, right, per) = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True,
                                           gridspec_kw={"width_ratios": [1.1, 1.0, 1.0]})
    for k, (label, mask) in enumerate([("all", dim_of > 0)] + [(f"{d}-D", dim_of == d) for d in dims]):
        for j, name in enumerate(names):
            sub = [e for e, keep in zip(entries, mask, strict=True) if keep]
            iv = by_function(scores[name][mask], sub)
            m, lo, hi = iv.mean, iv.low, iv.high
            y = j + 0.22 * (k - 1)
            left.errorbar(m, y, xerr=[[m - lo], [hi - m]], fmt="os^"[k % 3], color=f"C{k}", capsize=3,
                          label=label if j == 0 else None)
    left.set_yticks(range(len(names)), names)
    left.invert_yaxis()
    left.set_xlabel("mean log10 regret after the budget (lower is better), 95% CI resampled by function")
    left.legend(title="dimension", fontsize=8)
    ref = scores[names[0]]
    for j, name in enumerate(names[1:]):
        iv = by_function(scores[name] - ref, entries)
        d, lo, hi = iv.mean, iv.low, iv.high
        right.errorbar(d, j, xerr=[[d - lo], [hi - d]], fmt="o", color="C0", capsize=3)
    right.axvline(0.0, color="grey", lw=1)
    right.set_yticks(range(len(names) - 1), names[1:])
    right.invert_yaxis()
    right.set_xlabel("other - kept stack, log10 regret (> 0: kept better), 95% CI")
    _per_function(per, scores, entries)
    fig.suptitle(f"Sealed BBOB split, {len(entries)} (instance, seed) pairs; kept: {kept}", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _per_function(ax: Any, scores: dict[str, np.ndarray], entries: list[PanelEntry]) -> None:
    """One row per sealed function: each other method's mean "other - kept" over that function's pairs."""
    names = list(scores)
    seen: list[float] = [0.0]
    groups: list[str] = []
    for j, name in enumerate(names[1:]):
        means = function_means(scores[name] - scores[names[0]], entries)
        groups = list(means)
        seen += means.values()
        ax.scatter(list(means.values()), range(len(groups)), marker="os^D"[j % 4], color=f"C{j}", s=22, label=name)
    ax.axvline(0.0, color="grey", lw=1)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(min(-1.5, 1.3 * min(seen)), max(1.5, 1.3 * max(seen)))
    ax.set_yticks(range(len(groups)), groups)
    ax.invert_yaxis()
    ax.set_xlabel("other - kept per function (mean of its pairs; symlog)")
    ax.legend(fontsize=7)


if __name__ == "__main__":
    sys.exit(main())
