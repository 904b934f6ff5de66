"""The benchmark registry: ``get_benchmark(name, options)`` builds a judge-owned benchmark.

Each entry names a class with an ``OPTIONS`` tuple of the keyword options its
constructor accepts; unknown names and unknown options are refused with
messages that list what is allowed.
"""

from __future__ import annotations

from typing import Any

from bilevel.judge.benchmarks.autoresearch import AutoresearchGPT
from bilevel.judge.benchmarks.base import Benchmark, Instance, RunScore
from bilevel.judge.benchmarks.bbob import BBOB
from bilevel.judge.benchmarks.datamix import DatamixLM
from bilevel.judge.benchmarks.external import CommandBenchmark, PythonBenchmark
from bilevel.judge.benchmarks.mlx_lora import MlxLora
from bilevel.judge.benchmarks.null import NullBenchmark
from bilevel.judge.benchmarks.tabular import HPOTabular
from bilevel.judge.errors import BenchmarkError, UnknownBenchmark

_REGISTRY: dict[str, type[Benchmark]] = {
    "bbob": BBOB, "datamix-lm": DatamixLM, "hpo-tabular": HPOTabular, "mlx-lora": MlxLora,
    "autoresearch-gpt": AutoresearchGPT, "command": CommandBenchmark, "python": PythonBenchmark,
    "null": NullBenchmark,
}

BENCHMARKS: list[str] = sorted(_REGISTRY)


def get_benchmark(name: str, options: dict[str, Any] | None = None) -> Benchmark:
    """The benchmark ``name`` configured with ``options``. Called when a run starts or resumes."""
    try:
        cls = _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownBenchmark(f"unknown benchmark {name!r}; known benchmarks: {', '.join(_REGISTRY)}") from None
    options = dict(options or {})
    unknown = sorted(set(options) - set(cls.OPTIONS))
    if unknown:
        raise BenchmarkError(f"unknown option(s) {unknown} for benchmark {name!r}; "
                             f"allowed options: {', '.join(cls.OPTIONS)}")
    return cls(**options)


def suggested_defaults(name: str) -> dict[str, dict[str, Any]]:
    """The spec defaults benchmark ``name`` suggests (empty for an unknown name: the run refuses it later)."""
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    return {section: dict(values) for section, values in (cls.SUGGESTED if cls else {}).items()}


__all__ = ["BENCHMARKS", "Benchmark", "Instance", "RunScore", "get_benchmark", "suggested_defaults"]
