"""Per benchmark: cost per trial, and the seed-to-seed spread of a fixed config next to the spread across configs.

Run: ``.venv/bin/python bench/benchmarks.py [--seeds 8] [--configs 8] [--only datamix-lm,hpo-tabular]``.

For each benchmark, on its first instance:

- ``cost/trial``: the median wall time of one ``evaluate`` (data and tables warmed first);
- ``seed sd``: the standard deviation over ``--seeds`` seeds of one fixed config (the space's
  centre, or for datamix-lm a fixed mixture and learner), i.e. the noise a decision must beat;
- ``config sd``: the standard deviation over ``--configs`` random configs at seed 0 (for
  datamix-lm: random mixtures with the learner fixed, the spread the search can exploit);
- ``ratio``: config sd / seed sd (large means a score is stable enough to decide on).

``command``, ``python`` and ``autoresearch-gpt`` run the stand-ins under ``tests/data``; ``mlx-lora``
runs the tiny proxy model for a handful of steps (its numbers say nothing about real LoRA runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import ROOT, header, progress

from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.benchmarks import textsources as ts

DATA = ROOT / "tests" / "data"


def _centre(space: Any) -> dict[str, Any]:
    return space.decode([0.5] * space.dims)


def _datamix_fixed(space: Any, rng: np.random.Generator | None) -> dict[str, Any]:
    cfg = _centre(space) | {"order": 4, "discount": 0.7, "interpolation": 0.1}
    if rng is None:
        cfg["mix"] = {d: 1.0 / len(ts.DOMAINS) for d in ts.DOMAINS}
    else:
        w = rng.dirichlet(np.ones(len(ts.DOMAINS)))
        cfg["mix"] = {d: float(x) for d, x in zip(ts.DOMAINS, w / w.sum(), strict=True)}
    return cfg


CASES: dict[str, tuple[dict[str, Any], Callable[[Any, np.random.Generator | None], dict[str, Any]] | None]] = {
    "bbob": ({}, None),
    "datamix-lm": ({}, _datamix_fixed),
    "hpo-tabular": ({}, None),
    "command": ({"command": f"{sys.executable} {DATA / 'bench_command.py'}", "params": ["x:float:0:1"]}, None),
    "python": ({"callable": "bench_callable:quadratic", "params": ["x:float:0:1"], "pythonpath": [str(DATA)]}, None),
    "autoresearch-gpt": ({"checkout": str(DATA / "autoresearch_standin")}, None),
    "mlx-lora": ({"variants": 3}, None),
}


def measure(name: str, seeds: int, configs: int) -> dict[str, float]:
    options, maker = CASES[name]
    bench = get_benchmark(name, options)
    inst = bench.instances()[0]
    space = bench.space(inst)
    fixed = maker(space, None) if maker else _centre(space)
    if name == "mlx-lora":
        fixed |= {"iterations": 250}
    bench.objective(inst, 0).evaluate(fixed)  # warm caches and imports
    times: list[float] = []

    def ev(cfg: dict[str, Any], seed: int) -> float:
        start = time.perf_counter()
        value = bench.objective(inst, seed).evaluate(cfg)
        times.append(time.perf_counter() - start)
        return value

    by_seed = [ev(fixed, s) for s in range(seeds)]
    rng = np.random.default_rng(0)
    randoms = [maker(space, rng) if maker else space.sample(rng) for _ in range(configs)]
    if name == "mlx-lora":
        randoms = [c | {"iterations": 250} for c in randoms]
    by_config = []
    for cfg in randoms:
        try:
            by_config.append(ev(cfg, 0))
        except Exception as exc:  # noqa: BLE001 - a failing random config is reported, not fatal
            progress(f"{name}: a random config failed: {exc}")
    seed_sd = statistics.pstdev(by_seed)
    config_sd = statistics.pstdev(by_config) if len(by_config) > 1 else float("nan")
    return {"cost": statistics.median(times), "seed_sd": seed_sd, "config_sd": config_sd,
            "mean": statistics.fmean(by_seed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--configs", type=int, default=8)
    parser.add_argument("--only", default=",".join(CASES))
    args = parser.parse_args()
    header("benchmarks: cost per trial; seed spread of a fixed config vs spread across configs")
    print(f"# seeds={args.seeds} configs={args.configs}; first instance of each benchmark")
    print(f"{'benchmark':<18}{'cost/trial':>12}{'seed sd':>12}{'config sd':>12}{'ratio':>10}{'fixed mean':>12}")
    for name in args.only.split(","):
        progress(f"measuring {name}")
        n_seeds, n_configs = (3, 3) if name == "mlx-lora" else (args.seeds, args.configs)
        r = measure(name, n_seeds, n_configs)
        ratio = r["config_sd"] / r["seed_sd"] if r["seed_sd"] > 0 else float("inf")
        cost = f"{r['cost'] * 1e3:.2f} ms" if r["cost"] < 1 else f"{r['cost']:.2f} s"
        print(f"{name:<18}{cost:>12}{r['seed_sd']:>12.4g}{r['config_sd']:>12.4g}{ratio:>10.3g}{r['mean']:>12.4g}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
