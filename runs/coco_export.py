"""COCO-format data of a BBOB run (``bilevel export RUN --coco DIR [--stack ID]``).

For the kept stack (or ``--stack ID``) and the baseline, every pair of the
run's sealed test panel is run again through the run's own evaluator (the
same inner loop, budget and seeds that scored it) and each inner run's
evaluated configs are replayed, in order, through a ``cocoex.Observer``-
observed problem of the same (function, dimension, instance id). Each
algorithm gets its own folder ``DIR/<name>`` with COCO's ``.info``, ``.dat``
and ``.tdat`` files, so that ``python -m cocopp DIR/*`` compares them offline
(cocopp needs ``six``: ``pip install 'bilevel[coco]'``).

COCO counts runtime in evaluations: a trial whose evaluation failed (no
score) evaluated nothing and is left out, and the count is reported. Several
seeds on one instance are several COCO runs on that instance.
:func:`write_coco_algorithm` is the shared writer (``bench/meta_result.py
--coco`` uses it for its other methods).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bilevel.judge.evaluate import EvalResult
from bilevel.judge.stack import Stack
from bilevel.runs.history import load_history, test_bench
from bilevel.runs.store import Store, StoreError


@dataclass(frozen=True)
class CocoRun:
    """One inner run as COCO sees it: the BBOB problem and the points evaluated, in order."""

    function: int
    dimension: int
    instance: int
    points: tuple[tuple[float, ...], ...]


def algorithm_name(label: str) -> str:
    """A folder- and cocopp-safe algorithm name (letters, digits, ``-_.+``)."""
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "-", label).strip("-.")
    return name or "algorithm"


def write_coco_algorithm(directory: Path, algorithm: str, runs: Iterable[CocoRun], info: str = "") -> Path:
    """Replay ``runs`` through an observed cocoex problem; the data lands in ``directory/algorithm``.

    cocoex writes under ``exdata/`` of the working directory, so the observer
    works in a temporary folder and the result is moved into place. Refuses a
    folder that already exists (COCO would otherwise mix two experiments).
    """
    import cocoex

    algorithm = algorithm_name(algorithm)
    target = Path(directory) / algorithm
    if target.exists():
        raise StoreError(f"{target} already exists; remove it or give --coco another directory")
    ordered = sorted(runs, key=lambda r: (r.function, r.dimension, r.instance))
    if not ordered:
        raise StoreError(f"no runs to write for {algorithm}")
    instances = ",".join(str(i) for i in sorted({r.instance for r in ordered}))
    functions = ",".join(str(f) for f in sorted({r.function for r in ordered}))
    dimensions = ",".join(str(d) for d in sorted({r.dimension for r in ordered}))
    safe_info = info.replace('"', "'")
    with tempfile.TemporaryDirectory(prefix="bilevel-coco-") as tmp, contextlib.chdir(tmp):
        observer = cocoex.Observer("bbob", f"result_folder: {algorithm} algorithm_name: {algorithm} "
                                           f'algorithm_info: "{safe_info}"')
        # "instances:" in the suite-instance string selects instance ids; "instance_indices:" would be positions
        suite = cocoex.Suite("bbob", f"instances: {instances}",
                             f"function_indices: {functions} dimensions: {dimensions}")
        for run in ordered:
            problem = suite.get_problem_by_function_dimension_instance(run.function, run.dimension, run.instance)
            problem.observe_with(observer)
            for point in run.points:
                problem(np.asarray(point, dtype=float))
            problem.free()
        suite.free()
        produced = Path(tmp) / observer.result_folder
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(produced), str(target))
    return target


def coco_runs(results: Sequence[EvalResult]) -> tuple[list[CocoRun], int]:
    """The COCO runs of traced BBOB evaluations, and how many failed trials were left out."""
    out, skipped = [], 0
    for res in results:
        f, d, i = _triple(res.instance)
        points = []
        for trial in res.inner_result().trials:
            if trial.score is None:
                skipped += 1
                continue
            points.append(tuple(float(trial.config[f"x{j}"]) for j in range(d)))
        out.append(CocoRun(f, d, i, tuple(points)))
    return out, skipped


def _triple(key: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"bbob-f(\d+)-d(\d+)-i(\d+)", key)
    if match is None:
        raise StoreError(f"{key!r} is not a BBOB instance key (bbob-f3-d5-i2)")
    f, d, i = (int(g) for g in match.groups())
    return f, d, i


def export_coco(store: Store, run_id: str, directory: Path, stack_id: str | None = None) -> list[str]:
    """Write the stack's and the baseline's COCO data for the run's test panel; one line per algorithm."""
    history = load_history(store, run_id)
    if history.benchmark != "bbob":
        raise StoreError(f"--coco needs a bbob run (COCO data is BBOB data); run {run_id} is on "
                         f"{history.benchmark!r}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise StoreError(f"--coco {directory} is a file; give a directory")
    stack = history.final if stack_id is None else history.candidate_stack(store, stack_id)[0]
    arms: list[tuple[str, Stack]] = [(f"baseline-{history.baseline.search.strategy.value}", history.baseline)]
    if stack.key != history.baseline.key:
        arms.append((f"stack-{stack.key[:8]}", stack))
    lines = []
    with test_bench(store, run_id) as bench:
        panel = bench.panel
        for label, arm in arms:
            results = bench.evaluator.evaluate_many(arm, panel, keep_trace=True)
            runs, skipped = coco_runs(results)
            name = algorithm_name(f"{run_id}-{label}")
            info = f"bilevel run {run_id}: {arm.describe()} on its sealed test panel ({len(panel)} pairs)"
            path = write_coco_algorithm(directory, name, runs, info)
            note = f"; {skipped} failed trials left out" if skipped else ""
            lines.append(f"wrote {path}/ (COCO data: {arm.describe()}, {len(runs)} runs on the test panel{note})")
    if len(arms) == 1:
        lines.append(f"run {run_id} kept no stack: only the baseline was written (pick a candidate with --stack ID)")
    lines.append(f"post-process: python -m cocopp -o {directory / 'ppdata'} "
                 + " ".join(str(directory / algorithm_name(f'{run_id}-{label}')) for label, _ in arms))
    return lines
