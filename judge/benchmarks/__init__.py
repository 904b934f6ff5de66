"""The benchmark registry: ``get_benchmark(name, options)`` builds a judge-owned benchmark.

Each entry names a class with an ``OPTIONS`` tuple of the keyword options its
constructor accepts; unknown names and unknown options are refused with
messages that list what is allowed.
"""

from __future__ import annotations

from typing import Any

from judge.benchmarks.base import Benchmark, Instance, RunScore
from judge.benchmarks.bbob import BBOB
from judge.errors import BenchmarkError, UnknownBenchmark

_REGISTRY: dict[str, type[Benchmark]] = {"bbob": BBOB}

BENCHMARKS: list[str] = sorted(_REGISTRY)


def get_benchmark(name: str, options: dict[str, Any] | None = None) -> Benchmark:
    """The benchmark ``name`` configured with ``options``. Called when a run starts or resumes."""
    try:
        cls = _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownBenchmark(f"unknown benchmark {name!r}; known benchmarks: {', '.join(BENCHMARKS)}") from None
    options = dict(options or {})
    unknown = sorted(set(options) - set(cls.OPTIONS))
    if unknown:
        raise BenchmarkError(f"unknown option(s) {unknown} for benchmark {name!r}; "
                             f"allowed options: {', '.join(cls.OPTIONS)}")
    return cls(**options)


__all__ = ["BENCHMARKS", "Benchmark", "Instance", "RunScore", "get_benchmark"]
