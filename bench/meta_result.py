"""The meta-result: a full bilevel run on BBOB, then its kept stack against the samplers users would
otherwise pick, on a sealed test split that no verdict saw.

1. Runs ``bilevel run`` on the embedded defaults (offline author, BBOB
   functions 2 3 8 10 15 21, dimensions 2 and 5, instance ids 1-15) into a
   temporary store (or ``--store``).
2. Builds a sealed test benchmark from BBOB functions, dimensions and
   instance ids the run never touched: every function outside the run's
   six, dimensions 3 and 10, instance ids from 16 on.
3. Runs every method through the same inner loop at the run's budget, on
   the same (instance, seed) pairs: the kept stack, the baseline inner loop
   (greedy perturbation, no mechanisms), random search, optuna TPE and
   optuna CMA-ES (optuna's samplers with their settings pinned, asked and
   told by the inner loop's proposer).
4. Prints the mean log10 regret (lower is better) of each method with its
   95% bootstrap interval, the paired difference to the kept stack with its
   interval (positive: the kept stack is better), the share of pairs the
   kept stack wins, the anytime area and the share of targets solved.

    .venv/bin/python bench/meta_result.py [--seeds-per-instance 2] [--workers 2] [--out table.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from _common import header, progress, timed

from bilevel.inner.search_config import SearchConfig, Strategy
from bilevel.judge.benchmarks.bbob import DEFAULT_DIMENSIONS, DEFAULT_FUNCTIONS, DEFAULT_INSTANCE_IDS
from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Mechanism, Stack
from bilevel.judge.stats import paired_bootstrap_ci
from bilevel.outer.evaluator import BenchmarkRef, PanelEvaluator
from bilevel.outer.executors import ExecutorSpec, make_executor
from bilevel.runs.driver import create_run, execute, inner_settings
from bilevel.runs.spec import RunSpec, load_spec
from bilevel.runs.store import Store

TEST_DIMENSIONS = (3, 10)
N_BOOT = 4000


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


def _ci_mean(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    boots = rng.choice(values, size=(N_BOOT, values.size), replace=True).mean(axis=1)
    return float(values.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, help="run spec (default: the embedded defaults)")
    ap.add_argument("--max-functions", type=int, default=0, help="use only the first N unseen functions (0: all)")
    ap.add_argument("--store", type=Path, help="run store directory (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=0, help="the bilevel run's seed")
    ap.add_argument("--generations", type=int, help="override the run's generations")
    ap.add_argument("--budget", type=int, help="override the inner budget (trials per inner run)")
    ap.add_argument("--seeds-per-instance", type=int, default=2)
    ap.add_argument("--instances-per-problem", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executor", default="process", choices=("inprocess", "process", "ray"))
    ap.add_argument("--out", type=Path, help="also write the table (markdown) here")
    ap.add_argument("--json", type=Path, help="also write every method's per-pair scores (JSON) here")
    ap.add_argument("--plot", type=Path, help="also draw the table as a figure (PNG, with matplotlib)")
    args = ap.parse_args(argv)
    header("meta-result: kept stack vs baseline, random, optuna TPE, optuna CMA-ES on a sealed BBOB split")

    overrides: dict[str, dict[str, object]] = {"run": {"seed": args.seed, "workers": args.workers,
                                                       "executor": args.executor}}
    if args.generations:
        overrides["run"]["generations"] = args.generations
    if args.budget:
        overrides["inner"] = {"budget": args.budget}
    spec = load_spec(args.spec, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.in_dir(args.store or Path(tmp))
        run_id = create_run(store, spec)
        progress(f"bilevel run {run_id} (offline author, defaults)")
        run_s, summary = timed(lambda: execute(store, run_id, progress=progress))
        for line in summary.lines():
            print(f"run {line}")
        kept = kept_stack(store, run_id)
        store.close()

    settings = inner_settings(spec)
    options, entries = sealed_split(spec, args.seeds_per_instance, args.instances_per_problem,
                                    args.max_functions)
    print(f"sealed test split: functions {options['functions']}, dimensions {options['dimensions']}, "
          f"instance ids {options['instance_ids']}; {len(entries)} (instance, seed) pairs, "
          f"{len({e.seed for e in entries})} seeds; budget {settings.budget} trials per run")
    methods = {
        "kept stack": kept,
        "baseline inner loop": Stack((), settings.search),
        "random search": Stack((), SearchConfig(strategy=Strategy.RANDOM)),
        "optuna TPE": Stack((), SearchConfig(strategy=Strategy.TPE)),
        "optuna CMA-ES": Stack((), SearchConfig(strategy=Strategy.CMAES)),
    }
    print(f"kept stack: {kept.describe()}")
    scores: dict[str, np.ndarray] = {}
    extra: dict[str, tuple[float, float]] = {}
    seconds: dict[str, float] = {}
    executor = make_executor(ExecutorSpec(args.executor, args.workers))  # type: ignore[arg-type]
    evaluator = PanelEvaluator(BenchmarkRef.of("bbob", options), settings, executor=executor,
                               on_eval=lambda d, n: progress(f"{d}/{n}") if d % 24 == 0 or d == n else None)
    try:
        for name, stack in methods.items():
            progress(f"{name} on the sealed split")
            t, results = timed(partial(evaluator.evaluate_many, stack, entries))
            seconds[name] = t
            scores[name] = np.array([r.primary for r in results])
            extra[name] = (float(np.mean([r.subscores["auc"] for r in results])),
                           float(np.mean([r.subscores["solved"] for r in results])))
    finally:
        evaluator.close()

    ref = scores["kept stack"]
    rows = ["| method | mean log10 regret [95% CI] | other - kept [95% CI] | kept wins | auc | solved | s |",
            "|---|---|---|---|---|---|---|"]
    for name, vals in scores.items():
        m, lo, hi = _ci_mean(vals)
        if name == "kept stack":
            diff = "-"
            wins = "-"
        else:
            d, dlo, dhi = paired_bootstrap_ci(vals - ref, 0.95, N_BOOT, seed=0)
            diff = f"{d:+.3f} [{dlo:+.3f}, {dhi:+.3f}]"
            wins = f"{np.mean(ref < vals):.0%} ({int(np.sum(ref < vals))}/{vals.size}, ties {int(np.sum(ref == vals))})"
        auc, solved = extra[name]
        rows.append(f"| {name} | {m:.3f} [{lo:.3f}, {hi:.3f}] | {diff} | {wins} | {auc:.3f} | {solved:.3f} "
                    f"| {seconds[name]:.0f} |")
    print(f"bilevel run: {run_s:.0f} s")
    print("\n".join(rows))
    if args.out:
        args.out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"pairs": [e.key for e in entries], "kept": kept.describe(),
                                         "scores": {k: v.tolist() for k, v in scores.items()}}, indent=1))
    if args.plot:
        plot(scores, entries, args.plot, kept.describe())
        print(f"figure: {args.plot}")
    return 0


def plot(scores: dict[str, np.ndarray], entries: list[PanelEntry], path: Path, kept: str) -> None:
    """Left: each method's mean log10 regret with its 95% interval, per dimension and overall.
    Right: the paired difference to the kept stack (right of zero: the kept stack is better)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit("--plot needs matplotlib (a dependency of bilevel): pip install -e .") from exc
    names = list(scores)
    dims = sorted({int(e.instance.split("-d")[1].split("-")[0]) for e in entries})
    dim_of = np.array([int(e.instance.split("-d")[1].split("-")[0]) for e in entries])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for k, (label, mask) in enumerate([("all", dim_of > 0)] + [(f"{d}-D", dim_of == d) for d in dims]):
        for j, name in enumerate(names):
            m, lo, hi = _ci_mean(scores[name][mask])
            y = j + 0.22 * (k - 1)
            left.errorbar(m, y, xerr=[[m - lo], [hi - m]], fmt="os^"[k % 3], color=f"C{k}", capsize=3,
                          label=label if j == 0 else None)
    left.set_yticks(range(len(names)), names)
    left.invert_yaxis()
    left.set_xlabel("mean log10 regret after the budget (lower is better), 95% bootstrap CI")
    left.legend(title="dimension", fontsize=8)
    ref = scores[names[0]]
    for j, name in enumerate(names[1:]):
        d, lo, hi = paired_bootstrap_ci(scores[name] - ref, 0.95, N_BOOT, seed=0)
        right.errorbar(d, j, xerr=[[d - lo], [hi - d]], fmt="o", color="C0", capsize=3)
    right.axvline(0.0, color="grey", lw=1)
    right.set_yticks(range(len(names) - 1), names[1:])
    right.invert_yaxis()
    right.set_xlabel("other - kept stack, log10 regret (> 0: kept better), 95% CI")
    fig.suptitle(f"Sealed BBOB split, {len(entries)} (instance, seed) pairs; kept: {kept}", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
