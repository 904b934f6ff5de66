"""The benchmark contract: instances, a space and an objective per instance, and a score per inner run.

A benchmark is owned by the judge and is part of its fixed point: its
``describe()`` goes into the manifest, so a change to its options or to a
library version it reports stops a run from continuing under it.

Call order, as the judge uses it:

1. ``instances()`` once, to split panels (``judge.panels.split_panels``);
2. per panel entry, ``space(instance)`` and ``objective(instance, seed)``
   to build the inner run;
3. after the inner run, ``score(instance, result)`` to turn its trials into
   a :class:`RunScore` that verdicts compare;
4. ``describe()`` when the manifest is built or verified.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from bilevel.inner.objective import Objective
from bilevel.inner.records import InnerResult
from bilevel.inner.space import Space
from bilevel.judge.errors import BenchmarkError


@dataclass(frozen=True)
class Instance:
    """One problem of a benchmark.

    ``key`` is a stable unique id (``"bbob-f3-d5-i2"``); ``group`` is the
    group the regression cap works on (``"f3"``); ``data`` holds the
    JSON-able parameters of the instance. ``holdout`` optionally names a
    family the panels keep apart (for BBOB the instance id, ``"i2"``): when
    every instance has one, no holdout value is shared between the search,
    validation and test panels. Empty means no such family.
    """

    key: str
    group: str
    data: dict[str, Any] = field(default_factory=dict)
    holdout: str = ""


@dataclass(frozen=True)
class RunScore:
    """The score of one inner run. ``primary`` is what verdicts compare (LOWER is better);
    ``subscores`` are named extras for reports and veto floors (each documents its direction)."""

    primary: float
    subscores: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"primary": self.primary, "subscores": dict(sorted(self.subscores.items()))}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunScore:
        return cls(float(d["primary"]), {str(k): float(v) for k, v in d.get("subscores", {}).items()})


class Benchmark(ABC):
    """A judge-owned objective with instances, a direction (minimise), a bound where known."""

    name: str = ""
    OPTIONS: tuple[str, ...] = ()  # the keyword options the constructor accepts (the registry checks them)
    SCORE_TEXT: str = "the benchmark's primary score, lower is better"  # what the primary score means, for summaries
    # Spec defaults this benchmark suggests (section -> key -> value), applied under the user's own spec
    # when a run is created: e.g. smaller panels for a benchmark with few instances, a smaller budget
    # for one with costly trials. Keys must be keys of runs.spec.DEFAULTS.
    SUGGESTED: dict[str, dict[str, Any]] = {}

    @abstractmethod
    def instances(self) -> list[Instance]:
        """All instances, in a deterministic order. Called when panels are split."""

    @abstractmethod
    def space(self, instance: Instance) -> Space:
        """The search space of one instance. Called before each inner run."""

    @abstractmethod
    def objective(self, instance: Instance, seed: int) -> Objective:
        """A ready objective for one (instance, seed); its ``evaluate(config)`` returns the value
        to minimise. Called before each inner run."""

    @abstractmethod
    def score(self, instance: Instance, result: InnerResult) -> RunScore:
        """The score of a finished inner run on ``instance``. Called once per run, after it."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able: name, options, library versions, bound info. Goes into the judge manifest."""

    def data_files(self) -> list[str]:
        """Paths of the data files a score depends on (text corpora, a command's script, declared
        files); the manifest hashes their contents. Called when the manifest is built or verified."""
        return []

    def curve_value(self, value: float) -> float:
        """A raw best-so-far value on the primary score's scale (identity unless the score transforms it,
        as BBOB's log10 regret does). Called by reports that plot best-so-far curves."""
        return value

    def instance(self, key: str) -> Instance:
        """The instance with ``key``; BenchmarkError naming a few known keys if there is none.
        Called when a panel entry (which stores only the key) is turned back into an instance."""
        for inst in self.instances():
            if inst.key == key:
                return inst
        known = [i.key for i in self.instances()]
        raise BenchmarkError(
            f"benchmark {self.name!r} has no instance {key!r}; it has {len(known)} instances, "
            f"e.g. {known[:3]}; the panels were probably split for other benchmark options")
