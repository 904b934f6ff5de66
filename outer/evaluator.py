"""The panel evaluator: runs stacks on panel entries, with a cache and an executor.

Every evaluation has a deterministic key (stack, instance, seed, inner
settings), so a resumed run finds what was already computed and a killed run
loses at most the evaluations in flight. Where the inner runs happen (the
driver's process, a process pool, Ray) is the executor's business
(``outer.executors``); results are recorded here, in the driver, as each one
arrives, and handed back in entry order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from bilevel.inner.loop import InnerSettings
from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.benchmarks.base import Benchmark
from bilevel.judge.evaluate import EvalResult, evaluate_entry
from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Stack
from bilevel.outer.executors import Executor, ProcessExecutor


class EvalCache(Protocol):
    """Where finished evaluations are kept (the run store implements it)."""

    def get_eval(self, key: str) -> dict[str, Any] | None: ...

    def put_eval(self, key: str, stack_key: str, entry: PanelEntry, result: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class BenchmarkRef:
    """How to rebuild a benchmark in another process."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, options: dict[str, Any] | None) -> BenchmarkRef:
        return cls(name, tuple(sorted((k, _freeze(v)) for k, v in (options or {}).items())))

    def build(self) -> Benchmark:
        return _build_benchmark(self)


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@lru_cache(maxsize=8)
def _build_benchmark(ref: BenchmarkRef) -> Benchmark:
    return get_benchmark(ref.name, {k: list(v) if isinstance(v, tuple) else v for k, v in ref.options})


def _settings_json(settings: InnerSettings) -> dict[str, Any]:
    return {"budget": settings.budget, "max_rejections": settings.max_rejections}


def eval_key(stack: Stack, entry: PanelEntry, settings: InnerSettings) -> str:
    body = json.dumps({"stack": stack.key, "instance": entry.instance, "seed": entry.seed,
                       "settings": _settings_json(settings)}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class EvalTask:
    """One inner run of ``stack`` on ``entry``, as an executor ships it to a worker (picklable; a pure
    function of its fields). Called once per attempt, in whichever process the executor chose."""

    ref: BenchmarkRef
    stack: Stack
    entry: PanelEntry
    settings: InnerSettings
    keep_trace: bool = False

    def __call__(self) -> dict[str, Any]:
        return evaluate_entry(self.ref.build(), self.stack, self.entry, self.settings, self.keep_trace).to_json()


class PanelEvaluator:
    """Evaluates stacks on panel entries; results come back in entry order, whatever ran in parallel.

    ``executor`` runs the inner runs (default: a process pool of ``workers``;
    the evaluator closes an executor it made, and leaves one it was given to
    its owner, except that ``close`` closes both)."""

    def __init__(self, ref: BenchmarkRef, settings: InnerSettings, cache: EvalCache | None = None,
                 workers: int = 1, on_eval: Callable[[int, int], None] | None = None,
                 executor: Executor | None = None) -> None:
        self.ref = ref
        self.settings = settings
        self.cache = cache
        self.workers = max(1, workers)
        self.on_eval = on_eval
        self.executor: Executor = executor if executor is not None else ProcessExecutor(self.workers)
        self.computed = 0

    def evaluate_many(self, stack: Stack, entries: Sequence[PanelEntry], keep_trace: bool = False,
                      ) -> list[EvalResult]:
        """Called by the judge and the outer loop for each (stack, panel) they need."""
        keys = [eval_key(stack, e, self.settings) + ("t" if keep_trace else "") for e in entries]
        found: dict[int, dict[str, Any]] = {}
        if self.cache is not None:
            for i, k in enumerate(keys):
                hit = self.cache.get_eval(k)
                if hit is not None:
                    found[i] = hit
        todo = [i for i in range(len(entries)) if i not in found]
        tasks = [EvalTask(self.ref, stack, entries[i], self.settings, keep_trace) for i in todo]
        for done, (t, result) in enumerate(self.executor.run(tasks), 1):
            i = todo[t]
            if i in found:
                continue  # an executor yields each task once; this guards the record all the same
            found[i] = result
            self.computed += 1
            if self.cache is not None:
                self.cache.put_eval(keys[i], stack.key, entries[i], result)
            if self.on_eval is not None:  # counts over the whole panel: entries found in the cache are done
                self.on_eval(done + len(entries) - len(todo), len(entries))
        return [EvalResult.from_json(found[i]) for i in range(len(entries))]

    def close(self) -> None:
        """Shut the executor down (called once when the run ends)."""
        self.executor.close()
