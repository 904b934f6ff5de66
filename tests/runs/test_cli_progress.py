"""Progress counts match the panel (issue 13): entries found in the store count as done."""

from __future__ import annotations

from typing import Any

from bilevel.inner.loop import InnerSettings
from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Stack
from bilevel.outer.evaluator import BenchmarkRef, PanelEvaluator
from bilevel.outer.executors import ExecutorSpec, make_executor


class DictCache:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def get_eval(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def put_eval(self, key: str, stack_key: str, entry: PanelEntry, result: dict[str, Any]) -> None:
        self.data[key] = result


def test_progress_counts_the_whole_panel_with_cached_entries() -> None:
    ref = BenchmarkRef.of("bbob", {"functions": [1], "dimensions": [2], "instance_ids": [1, 2, 3, 4]})
    entries = [PanelEntry(f"bbob-f1-d2-i{i}", "f1", 10 + i) for i in (1, 2, 3, 4)]
    calls: list[tuple[int, int]] = []
    evaluator = PanelEvaluator(ref, InnerSettings(budget=4), cache=DictCache(), on_eval=lambda d, t: calls.append((d, t)),
                               executor=make_executor(ExecutorSpec("inprocess", 1, "")))
    try:
        evaluator.evaluate_many(Stack(()), entries[:3])
        assert calls == [(1, 3), (2, 3), (3, 3)]
        calls.clear()
        evaluator.evaluate_many(Stack(()), entries)  # three in the cache, one computed
        assert calls == [(4, 4)]
    finally:
        evaluator.close()
