"""Bench (4): trials per second of the inner loop on BBOB vs optuna's TPE sampler on the same budget.

All on the same BBOB instance and budget, in this process:

- ``optuna TPE study``: a plain ``optuna.create_study`` + ``study.optimize``
  with ``TPESampler`` (the inner loop's pinned TPE settings), what a user
  would otherwise write;
- ``inner loop, greedy``: the baseline inner loop (no mechanisms);
- ``inner loop, tpe``: the inner loop with optuna's TPE as its base proposer;
- ``inner loop, greedy + 3 mechanisms``: tabu, ucb_bandit, trust_region in the sandbox.

Prints trials per second and the ratio to the optuna TPE study.

    .venv/bin/python bench/inner_vs_optuna.py [--trials 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from functools import partial

import optuna
from _common import builtin_stack, header, progress, timed

from bilevel.inner.loop import DEFAULT_POOL, InnerSettings, run_inner
from bilevel.inner.optuna_proposer import TPE_SETTINGS
from bilevel.inner.search_config import SearchConfig, Strategy
from bilevel.judge.benchmarks.bbob import LOWER, UPPER, BBOBObjective


def optuna_tpe(objective: BBOBObjective, trials: int, seed: int) -> float:
    """A plain optuna study on the objective; returns the best value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, **TPE_SETTINGS)
    study = optuna.create_study(sampler=sampler)
    names = objective.space.names
    study.optimize(lambda t: objective.evaluate({n: t.suggest_float(n, LOWER, UPPER) for n in names}),
                   n_trials=trials)
    return float(study.best_value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dimension", type=int, default=5)
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    header("inner loop trials/s on BBOB vs an optuna TPE study, same budget")
    objective = BBOBObjective(8, args.dimension, 1)
    n = args.trials
    mechs = builtin_stack(("tabu", "ucb_bandit", "trust_region")).sources()
    cases = {
        "optuna TPE study": lambda s: optuna_tpe(objective, n, s),
        "inner loop, greedy": lambda s: run_inner(objective, [], InnerSettings(budget=n), s),
        "inner loop, tpe proposer": lambda s: run_inner(
            objective, [], InnerSettings(budget=n, search=SearchConfig(strategy=Strategy.TPE)), s),
        "inner loop, greedy + 3 mechanisms": lambda s: run_inner(objective, mechs, InnerSettings(budget=n), s),
    }
    run_inner(objective, mechs, InnerSettings(budget=n), 10_000)  # warm the sandbox worker
    times: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(args.repeats):
        progress(f"repeat {r + 1}/{args.repeats}")
        for name, fn in cases.items():
            times[name].append(timed(partial(fn, r))[0])
    DEFAULT_POOL.close()
    base = n / statistics.median(times["optuna TPE study"])
    print(f"BBOB f8 d{args.dimension}, {n} trials per run, median of {args.repeats}")
    print(f"{'':36s} {'trials/s':>10s} {'vs optuna TPE':>14s}")
    for name, ts in times.items():
        rate = n / statistics.median(ts)
        print(f"{name:36s} {rate:10.0f} {rate / base:13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
