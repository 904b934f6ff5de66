"""Every training benchmark is registered, rebuilds from name + options in a worker, and pickles."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest

from bilevel.judge.benchmarks import BENCHMARKS, get_benchmark
from bilevel.judge.errors import BenchmarkError
from bilevel.outer.evaluator import BenchmarkRef

DATA = Path(__file__).parent.parent / "data"
OPTIONS = {
    "datamix-lm": {"sharpness": [0.1], "variants": 2, "tokens": 8192, "val_bytes": 2048},
    "hpo-tabular": {"suites": ["nasbench201"]},
    "command": {"command": f"{sys.executable} {DATA / 'bench_command.py'}", "params": ["x:float:0:1"],
                "instances": ["a", "b"]},
    "python": {"callable": "bench_callable:plain", "params": "x:float:0:1", "pythonpath": [str(DATA)]},
    "autoresearch-gpt": {"checkout": str(DATA / "autoresearch_standin"), "replicates": 2},
    "mlx-lora": {"variants": 2},
}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_rebuilds_from_a_ref_and_pickles(name: str) -> None:
    assert name in BENCHMARKS
    if name == "mlx-lora":
        pytest.importorskip("mlx.core", reason="mlx-lora needs mlx (the mlx extra); skipped, not failed, without it")
    bench = BenchmarkRef.of(name, OPTIONS[name]).build()
    direct = get_benchmark(name, OPTIONS[name])
    assert bench.describe() == direct.describe()
    inst = bench.instances()[0]
    obj = pickle.loads(pickle.dumps(bench.objective(inst, 1)))
    assert obj.space == bench.space(inst)
    subs = bench.describe()["score"]["subscores"]
    assert all(("lower" in d or "higher" in d) for d in subs.values()), f"{name}: sub-score directions {subs}"
    with pytest.raises(BenchmarkError, match="allowed options"):
        get_benchmark(name, {**OPTIONS[name], "bogus": 1})
