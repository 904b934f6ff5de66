"""Executors: the same evaluations on every executor, dead workers retried, nothing recorded twice."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bilevel.inner.loop import InnerSettings
from bilevel.inner.search_config import SearchConfig
from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.panels import PanelEntry, PanelSpec, split_panels
from bilevel.judge.stack import Mechanism, Stack
from bilevel.mechanisms.library import load_source
from bilevel.outer.evaluator import BenchmarkRef, PanelEvaluator
from bilevel.outer.executors import (
    Executor,
    ExecutorError,
    ExecutorKind,
    ExecutorSpec,
    InProcessExecutor,
    ProcessExecutor,
    RayExecutor,
    Task,
    make_executor,
)
from bilevel.runs.cli import main
from bilevel.runs.driver import create_run, execute
from bilevel.runs.spec import SpecError, load_spec
from bilevel.runs.store import Store

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"
OPTIONS = {"functions": [1, 8], "dimensions": [2], "instance_ids": list(range(1, 10))}


@dataclass(frozen=True)
class Square:
    """A trivial task: x squared, with the pid of the process that ran it."""

    x: int

    def __call__(self) -> dict[str, Any]:
        return {"x": self.x, "y": self.x * self.x, "pid": os.getpid()}


@dataclass(frozen=True)
class DieOnce:
    """Kills the process running it the first time (marked by a file), then runs ``task``."""

    task: Any
    marker: str

    def __call__(self) -> dict[str, Any]:
        if not os.path.exists(self.marker):
            Path(self.marker).write_text("died")
            os._exit(17)
        return dict(self.task())


@dataclass(frozen=True)
class AlwaysDie:
    def __call__(self) -> dict[str, Any]:
        os._exit(19)


class FlakyExecutor(Executor):
    """Wraps another executor: the first attempt of every other task kills its worker."""

    kind = ExecutorKind.PROCESS

    def __init__(self, inner: Executor, markers: Path) -> None:
        self.inner = inner
        self.markers = markers
        self.batches = 0

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[int, dict[str, Any]]]:
        self.batches += 1
        wrapped = [DieOnce(t, str(self.markers / f"b{self.batches}-t{i}")) if i % 2 == 0 else t
                   for i, t in enumerate(tasks)]
        return self.inner.run(wrapped)

    def close(self) -> None:
        self.inner.close()


class CountingCache:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}
        self.puts: list[str] = []

    def get_eval(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def put_eval(self, key: str, stack_key: str, entry: PanelEntry, result: dict[str, Any]) -> None:
        self.puts.append(key)
        self.data.setdefault(key, result)


def _by_value() -> None:
    """Ray workers cannot import this test module: ship its classes by value."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _stack() -> Stack:
    mechs = tuple(Mechanism(n, load_source(n)) for n in ("tabu", "ucb_bandit"))
    return Stack(mechs, SearchConfig())


def _entries() -> list[PanelEntry]:
    bench = get_benchmark("bbob", OPTIONS)
    panels = split_panels(bench.instances(), PanelSpec(2, 4, 4, 1))
    return list(panels.validation)


def _strip(result: Any) -> Any:
    """A result without its wall-clock time (the only field allowed to differ between executors)."""
    d = result.to_json()
    d.pop("elapsed_s")
    return d


def _evaluate(executor: Executor, keep_trace: bool) -> list[Any]:
    ev = PanelEvaluator(BenchmarkRef.of("bbob", OPTIONS), InnerSettings(budget=12), executor=executor)
    try:
        return [_strip(r) for r in ev.evaluate_many(_stack(), _entries(), keep_trace=keep_trace)]
    finally:
        ev.close()


def test_executor_spec_refuses_bad_choices() -> None:
    with pytest.raises(ExecutorError, match="unknown executor 'threads'"):
        ExecutorSpec("threads")  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="for the ray executor only"):
        ExecutorSpec(ExecutorKind.PROCESS, address="ray://head:10001")
    with pytest.raises(ExecutorError, match="at least one worker"):
        ExecutorSpec(ExecutorKind.RAY, workers=0)
    assert isinstance(make_executor(ExecutorSpec("inprocess")), InProcessExecutor)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="executor must be inprocess, process or ray"):
        load_spec(None, {"run": {"executor": "threads"}})
    with pytest.raises(SpecError, match="address is for executor"):
        load_spec(None, {"run": {"address": "head:6379"}})


def test_cli_refuses_an_unknown_executor(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--executor", "threads"])
    assert "invalid choice: 'threads'" in capsys.readouterr().err
    assert main(["run", "--executor", "process", "--address", "head:6379", "--store", "unused"]) == 2
    assert "address is for executor" in capsys.readouterr().err


def test_process_pool_yields_every_task_once_in_worker_processes() -> None:
    with ProcessExecutor(2) as ex:
        got = dict(ex.run([Square(x) for x in range(6)]))
    assert sorted(got) == list(range(6))
    assert all(got[i]["y"] == i * i for i in got)
    assert all(r["pid"] != os.getpid() for r in got.values())


def test_a_dead_pool_worker_is_replaced_and_its_task_requeued(tmp_path: Path) -> None:
    tasks = [DieOnce(Square(x), str(tmp_path / f"m{x}")) if x == 2 else Square(x) for x in range(5)]
    with ProcessExecutor(2) as ex:
        got = dict(ex.run(tasks))
        assert ex.restarts >= 1
    assert sorted(got) == list(range(5)) and got[2]["y"] == 4
    assert (tmp_path / "m2").read_text() == "died"


def test_a_task_that_always_kills_its_worker_gives_up_with_a_clear_error() -> None:
    with ProcessExecutor(2, max_retries=1) as ex, pytest.raises(ExecutorError, match="died 2 times while running task 0 alone"):
        dict(ex.run([AlwaysDie(), Square(1)]))


@pytest.mark.slow
def test_evaluator_records_each_evaluation_once_when_workers_die(tmp_path: Path) -> None:
    reference = _evaluate(InProcessExecutor(), keep_trace=False)
    cache = CountingCache()
    flaky = FlakyExecutor(ProcessExecutor(2, max_retries=1), tmp_path)
    ev = PanelEvaluator(BenchmarkRef.of("bbob", OPTIONS), InnerSettings(budget=12), cache=cache, executor=flaky)
    try:
        got = [_strip(r) for r in ev.evaluate_many(_stack(), _entries())]
    finally:
        ev.close()
    assert got == reference
    assert len(cache.puts) == len(set(cache.puts)) == len(reference)
    assert len(list(tmp_path.iterdir())) == (len(reference) + 1) // 2  # these first attempts died


@pytest.mark.slow
def test_same_evaluations_on_every_executor(ray_local: Any) -> None:
    _by_value()
    reference = _evaluate(InProcessExecutor(), keep_trace=True)
    assert any(r["changed_by"] and max(r["changed_by"].values()) > 0 for r in reference)
    assert _evaluate(ProcessExecutor(2), keep_trace=True) == reference
    assert _evaluate(RayExecutor(2), keep_trace=True) == reference


@pytest.mark.slow
def test_ray_reruns_a_task_whose_worker_died(ray_local: Any, tmp_path: Path) -> None:
    _by_value()
    ex = RayExecutor(2, max_retries=2)
    tasks = [DieOnce(Square(x), str(tmp_path / f"r{x}")) for x in range(3)]
    got = dict(ex.run(tasks))
    assert sorted(got) == [0, 1, 2] and [got[i]["y"] for i in range(3)] == [0, 1, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r0", "r1", "r2"]
    ex.close()
    assert ray_local.is_initialized(), "an executor must not shut down a Ray it did not start"


def _decisions(store: Store, run_id: str) -> list[tuple[Any, ...]]:
    return [(v["generation"], v["index"], v["stack_key"], v["keep"], v["stage"], v["reason"], v["ci_low"])
            for v in store.verdicts(run_id)]


def _evaluations(store: Store, run_id: str) -> list[tuple[str, str, int, str]]:
    """Every recorded evaluation, without wall-clock times, in a canonical order."""
    import json

    out = []
    for row in store.evaluations(run_id):
        result = dict(row["result"])
        result.pop("elapsed_s")
        out.append((row["stack_key"], row["instance"], row["seed"], json.dumps(result, sort_keys=True)))
    return sorted(out)


@pytest.mark.slow
def test_a_whole_run_is_identical_on_every_executor(ray_local: Any, tmp_path: Path) -> None:
    store = Store.in_dir(tmp_path)
    summaries, decisions, evaluations = {}, {}, {}
    for kind in ("inprocess", "process", "ray"):
        spec = load_spec(SPEC, {"run": {"executor": kind, "workers": 2, "generations": 1}})
        run_id = create_run(store, spec)
        fields = execute(store, run_id).fields
        summaries[kind] = {k: v for k, v in fields.items() if k not in ("run", "wall_s")}
        decisions[kind] = _decisions(store, run_id)
        evaluations[kind] = _evaluations(store, run_id)
    assert decisions["inprocess"], "the run judged nothing"
    assert any('"trace": {' in e[3] for e in evaluations["inprocess"]), "no trials were recorded"
    for kind in ("process", "ray"):
        assert summaries[kind] == summaries["inprocess"], kind
        assert decisions[kind] == decisions["inprocess"], kind
        assert evaluations[kind] == evaluations["inprocess"], kind
