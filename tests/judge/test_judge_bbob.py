"""BBOB benchmark: regret at the optimum, determinism, instances, scoring, registry errors."""

from __future__ import annotations

import math
import pickle

import cocoex
import numpy as np
import pytest

from bilevel.inner.objective import Objective, ObjectiveError
from bilevel.inner.records import InnerResult, Trial
from bilevel.judge.benchmarks import BENCHMARKS, get_benchmark
from bilevel.judge.benchmarks.base import Instance
from bilevel.judge.benchmarks.bbob import BBOB, TARGETS, empty_run_bound
from bilevel.judge.errors import BenchmarkError, JudgeError, UnknownBenchmark


def _config(x: np.ndarray) -> dict[str, float]:
    return {f"x{j}": float(v) for j, v in enumerate(x)}


def _run(scores: list[float | None]) -> InnerResult:
    return InnerResult(tuple(Trial(i, {}, s, False, "test") for i, s in enumerate(scores)))


@pytest.fixture(scope="module")
def bbob() -> BBOB:
    return BBOB()


def test_defaults_count_and_keys(bbob: BBOB) -> None:
    insts = bbob.instances()
    assert len(insts) == len(bbob.functions) * 2 * 15 == 360
    assert len({i.key for i in insts}) == len(insts)
    assert insts == bbob.instances()  # deterministic order
    first = insts[0]
    assert first.key == f"bbob-f{bbob.functions[0]}-d2-i1"
    assert first.group == f"f{bbob.functions[0]}"
    assert first.data == {"function": bbob.functions[0], "dimension": 2, "instance": 1}


@pytest.mark.parametrize("f,d,i", [(1, 2, 1), (3, 5, 2), (8, 5, 7), (21, 2, 15), (24, 5, 3)])
def test_zero_regret_at_the_optimum(f: int, d: int, i: int) -> None:
    bench = BBOB(functions=(f,), dimensions=(d,), instance_ids=(i,))
    inst = bench.instance(f"bbob-f{f}-d{d}-i{i}")
    obj = bench.objective(inst, seed=0)
    best = np.asarray(cocoex.BareProblem("bbob", f, d, i).best_parameter())
    assert obj.evaluate(_config(best)) == 0.0
    assert obj.evaluate(_config(np.zeros(d))) > 0.0


def test_objective_is_deterministic_and_picklable(bbob: BBOB) -> None:
    inst = bbob.instance("bbob-f15-d5-i4")
    obj = bbob.objective(inst, seed=3)
    assert isinstance(obj, Objective)
    rng = np.random.default_rng(0)
    for _ in range(5):
        cfg = obj.space.sample(rng)
        v = obj.evaluate(cfg)
        assert v >= 0.0 and v == obj.evaluate(dict(cfg))
        assert v == bbob.objective(inst, seed=99).evaluate(cfg)  # the seed never changes a value
    clone = pickle.loads(pickle.dumps(obj))
    assert clone.evaluate(cfg) == obj.evaluate(cfg)


def test_space_is_the_box(bbob: BBOB) -> None:
    space = bbob.space(bbob.instance("bbob-f3-d5-i2"))
    assert space.names == [f"x{j}" for j in range(5)]
    assert all(p.low == -5.0 and p.high == 5.0 for p in space.params)  # type: ignore[union-attr]


def test_objective_refuses_points_outside_the_box(bbob: BBOB) -> None:
    obj = bbob.objective(bbob.instance("bbob-f3-d2-i2"), 0)
    with pytest.raises(ObjectiveError, match="x0..x1"):
        obj.evaluate({"x0": 0.0})
    with pytest.raises(ObjectiveError, match=r"\[-5.0, 5.0\]"):
        obj.evaluate({"x0": 6.0, "x1": 0.0})


def test_score_of_a_known_run(bbob: BBOB) -> None:
    inst = bbob.instance("bbob-f3-d2-i1")
    score = bbob.score(inst, _run([100.0, None, 1.0, 10.0, 0.01]))
    # best so far: 100, 100, 1, 1, 0.01 -> logs 2, 2, 0, 0, -2
    assert score.primary == pytest.approx(-2.0)
    assert score.subscores["log10_regret"] == score.primary
    assert score.subscores["auc"] == pytest.approx((2 + 2 + 0 + 0 - 2) / 5)
    # targets 1e2 .. 1e-2 in steps of 0.2 decades: 21 of 51
    assert score.subscores["solved"] == pytest.approx(21 / 51)
    assert len(TARGETS) == 51 and TARGETS[0] == pytest.approx(100.0) and TARGETS[-1] == pytest.approx(1e-8)


def test_score_floors_and_failures(bbob: BBOB) -> None:
    inst = bbob.instance("bbob-f3-d2-i1")
    solved = bbob.score(inst, _run([0.0]))
    assert solved.primary == -8.0 and solved.subscores["solved"] == 1.0
    empty = empty_run_bound(3, 2, 1)
    assert empty >= 2.0
    for run in (_run([]), _run([None, None, math.nan])):
        s = bbob.score(inst, run)
        assert s.primary == empty and s.subscores == {"log10_regret": empty, "auc": empty, "solved": 0.0}
    late = bbob.score(inst, _run([None, 1.0]))  # a failed trial uses budget at the empty bound
    assert late.subscores["auc"] == pytest.approx((empty + 0.0) / 2)


def test_describe_is_json_and_names_versions(bbob: BBOB) -> None:
    import json

    d = json.loads(json.dumps(bbob.describe()))
    assert d["name"] == "bbob" and d["versions"]["cocoex"] == cocoex.__version__
    assert d["options"]["functions"] == list(bbob.functions)


def test_registry_errors() -> None:
    assert "bbob" in BENCHMARKS
    assert isinstance(get_benchmark("bbob", {"functions": [1, 2]}), BBOB)
    with pytest.raises(UnknownBenchmark, match="known benchmarks: bbob"):
        get_benchmark("nope")
    with pytest.raises(BenchmarkError, match="'budget'.*allowed options: functions, dimensions, instance_ids"):
        get_benchmark("bbob", {"budget": 3})
    with pytest.raises(BenchmarkError, match="functions"):
        get_benchmark("bbob", {"functions": [25]})  # would abort the process inside cocoex
    with pytest.raises(BenchmarkError, match="dimensions"):
        get_benchmark("bbob", {"dimensions": [7]})
    assert issubclass(UnknownBenchmark, JudgeError) and issubclass(BenchmarkError, JudgeError)


def test_unknown_instances_are_refused(bbob: BBOB) -> None:
    with pytest.raises(BenchmarkError, match="no instance"):
        bbob.instance("bbob-f4-d2-i1")  # f4 is not among the defaults
    with pytest.raises(BenchmarkError):
        bbob.instance("garbage")
    with pytest.raises(BenchmarkError):
        bbob.objective(Instance("x", "f1", {"function": 1, "dimension": 2, "instance": 99}), 0)
