"""``null``: a benchmark on which nothing can help, to measure the judge's false-keep rate (an A/A check).

Instances are ``null-g{g}-i{i}`` in groups ``g{g}`` (``groups`` x
``instances_per_group``), so panels, clustered intervals and splits work as
on any benchmark. The space is ``x0 .. x{d-1}`` in [0, 1]. Each evaluation
returns ``group_offset + instance_offset + e`` where ``e`` is a fresh standard
normal draw seeded by sha256 of (instance, seed, trial number, config): the
distribution of every value is the same whatever the config, and a value
says nothing about any other config or trial, so no search strategy can
do better than another in expectation. The offsets (standard deviation
``offset_sd``) are shared by every stack on an instance, as real benchmarks
share difficulty.

Score of one inner run (lower is better): ``primary`` = the mean of the run's
successful trial values (exactly mean 0 offsets aside, for any stack); an
empty run scores the offsets alone. Every keep on this benchmark is false.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bilevel.inner.records import InnerResult
from bilevel.inner.space import Config, FloatParam, Space
from bilevel.judge.benchmarks.base import Benchmark, Instance, RunScore
from bilevel.judge.benchmarks.common import check_float, check_int


def _normal(*parts: str) -> float:
    """A standard normal draw seeded by sha256 of the parts (the same parts, the same draw)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return float(np.random.default_rng(int.from_bytes(digest[:8], "big")).standard_normal())


@dataclass
class NullObjective:
    """One (instance, seed): fresh noise per evaluation. Built fresh for every inner run, so the trial
    counter is the trial number; ``evaluate`` is called once per trial."""

    key: str
    seed: int
    offset: float
    dimension: int
    calls: int = field(default=0)

    @property
    def space(self) -> Space:
        return Space(tuple(FloatParam(f"x{j}", 0.0, 1.0) for j in range(self.dimension)))

    def evaluate(self, config: Config) -> float:
        self.calls += 1
        text = json.dumps(config, sort_keys=True, default=str)
        return self.offset + _normal("null", self.key, str(self.seed), str(self.calls), text)


class NullBenchmark(Benchmark):
    """Seeded noise independent of the config, with groups and instances (see the module docstring)."""

    name = "null"
    OPTIONS = ("groups", "instances_per_group", "dimension", "offset_sd")
    SCORE_TEXT = "mean trial value of pure noise (nothing can help), lower is better"
    SUGGESTED = {"inner": {"budget": 20}}  # calibration runs many outer runs: keep each cheap

    def __init__(self, groups: Any = 12, instances_per_group: Any = 16, dimension: Any = 4,
                 offset_sd: Any = 0.5) -> None:
        self.groups = check_int("null", "groups", groups, 1, 1000)
        self.per_group = check_int("null", "instances_per_group", instances_per_group, 1, 10_000)
        self.dimension = check_int("null", "dimension", dimension, 1, 100)
        self.offset_sd = check_float("null", "offset_sd", offset_sd, 0.0, 100.0)

    def instances(self) -> list[Instance]:
        return [Instance(f"null-g{g}-i{i}", f"g{g}", {"g": g, "i": i})
                for g in range(self.groups) for i in range(self.per_group)]

    def space(self, instance: Instance) -> Space:
        return Space(tuple(FloatParam(f"x{j}", 0.0, 1.0) for j in range(self.dimension)))

    def _offset(self, instance: Instance) -> float:
        return self.offset_sd * (_normal("null-group", instance.group) + _normal("null-instance", instance.key))

    def objective(self, instance: Instance, seed: int) -> NullObjective:
        return NullObjective(instance.key, seed, self._offset(instance), self.dimension)

    def score(self, instance: Instance, result: InnerResult) -> RunScore:
        values = [t.score for t in result.trials if t.score is not None and math.isfinite(t.score)]
        primary = math.fsum(values) / len(values) if values else self._offset(instance)
        return RunScore(primary, {"trials_ok": float(len(values))})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "groups": self.groups, "instances_per_group": self.per_group,
                "dimension": self.dimension, "offset_sd": self.offset_sd}
