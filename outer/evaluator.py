"""The panel evaluator: runs stacks on panel entries, with a cache and an optional process pool.

Every evaluation has a deterministic key (stack, instance, seed, inner
settings), so a resumed run finds what was already computed and a killed run
loses at most the evaluations in flight.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from inner.loop import InnerSettings
from judge.benchmarks import get_benchmark
from judge.benchmarks.base import Benchmark
from judge.evaluate import EvalResult, evaluate_entry
from judge.panels import PanelEntry
from judge.stack import Stack


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


def _task(ref: BenchmarkRef, stack: Stack, entry: PanelEntry, settings: InnerSettings,
          keep_trace: bool) -> dict[str, Any]:
    return evaluate_entry(ref.build(), stack, entry, settings, keep_trace).to_json()


class PanelEvaluator:
    """Evaluates stacks on panel entries; results come back in entry order, whatever ran in parallel."""

    def __init__(self, ref: BenchmarkRef, settings: InnerSettings, cache: EvalCache | None = None,
                 workers: int = 1, on_eval: Callable[[int, int], None] | None = None) -> None:
        self.ref = ref
        self.settings = settings
        self.cache = cache
        self.workers = max(1, workers)
        self.on_eval = on_eval
        self._pool: Executor | None = None
        self.computed = 0

    def evaluate_many(self, stack: Stack, entries: Sequence[PanelEntry], keep_trace: bool = False,
                      ) -> list[EvalResult]:
        keys = [eval_key(stack, e, self.settings) + ("t" if keep_trace else "") for e in entries]
        found: dict[int, dict[str, Any]] = {}
        if self.cache is not None:
            for i, k in enumerate(keys):
                hit = self.cache.get_eval(k)
                if hit is not None:
                    found[i] = hit
        todo = [i for i in range(len(entries)) if i not in found]
        for done, (i, result) in enumerate(self._run(stack, [entries[i] for i in todo], todo, keep_trace), 1):
            found[i] = result
            self.computed += 1
            if self.cache is not None:
                self.cache.put_eval(keys[i], stack.key, entries[i], result)
            if self.on_eval is not None:
                self.on_eval(done, len(todo))
        return [EvalResult.from_json(found[i]) for i in range(len(entries))]

    def _run(self, stack: Stack, entries: list[PanelEntry], index: list[int], keep_trace: bool,
             ) -> Any:
        if self.workers == 1 or len(entries) <= 1:
            for i, e in zip(index, entries, strict=True):
                yield i, _task(self.ref, stack, e, self.settings, keep_trace)
            return
        pool = self._ensure_pool()
        futures = [pool.submit(_task, self.ref, stack, e, self.settings, keep_trace) for e in entries]
        for i, fut in zip(index, futures, strict=True):
            yield i, fut.result()

    def _ensure_pool(self) -> Executor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        """Shut the pool down (called once when the run ends)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
