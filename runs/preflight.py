"""Checks made before a run is created: panel sizes that fit, and one pre-flight trial of the benchmark.

Called by ``runs.driver.create_run`` (and ``bilevel judge``) before anything
is recorded, so a broken benchmark fails loudly with its own error instead
of a run that "completes" with every trial failed. May import from every
room below ``runs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bilevel.inner.objective import ObjectiveError
from bilevel.judge.benchmarks.base import Benchmark
from bilevel.judge.errors import JudgeError
from bilevel.judge.panels import Panels, PanelSpec

# Benchmarks that run the user's own code from a folder (``workdir``).
USER_BENCHMARKS = ("command", "python")


class PreflightError(JudgeError):
    """The benchmark failed before the run was created; the message has its error and how to fix it."""


def check_panel_sizes(n_instances: int, spec: PanelSpec, benchmark: str) -> None:
    """PreflightError naming the ``[panels]`` keys and sizes that fit when the panels need more instances."""
    sizes = spec.sizes()
    needed = sum(sizes.values())
    if n_instances >= needed:
        return
    keys = ", ".join(f"{name}_instances = {size}" for name, size in sizes.items())
    fit = fitting_sizes(n_instances, sizes)
    hint = (", ".join(f"{name}_instances = {size}" for name, size in fit.items()) if fit
            else "none: give the benchmark more instances")
    raise PreflightError(
        f"the {benchmark} benchmark has {n_instances} instances but the panels need {needed} "
        f"([panels] {keys}); set [panels] sizes that fit, e.g. {hint}, or give the benchmark more "
        "instances (each instance sits in one panel; seeds_per_instance adds pairs without instances)")


def fitting_sizes(n: int, sizes: dict[str, int]) -> dict[str, int]:
    """Panel sizes summing to ``n``: one instance for each panel asked for (validation first), the rest
    in proportion to what was asked beyond one (largest remainders). Empty when ``n`` < 1."""
    if n < 1:
        return {}
    asked = sorted((k for k, v in sizes.items() if v > 0), key=lambda k: (k != "validation", k))
    out = {name: 0 for name in sizes}
    for name in asked[:n]:
        out[name] = 1
    left = n - sum(out.values())
    extra = {name: sizes[name] - 1 for name in asked}
    total = sum(extra.values())
    if left > 0 and total > 0:
        shares = {name: extra[name] * left / total for name in asked}
        for name in asked:
            out[name] += int(shares[name])
        by_remainder = sorted(asked, key=lambda k: (-(shares[k] - int(shares[k])), k))
        for name in by_remainder[: n - sum(out.values())]:
            out[name] += 1
    return out


def default_workdir(options: dict[str, Any], benchmark: str, spec_path: Path | None) -> dict[str, Any]:
    """``options`` with ``workdir`` set for a ``command``/``python`` benchmark that does not set one:
    the spec file's folder, else the current folder (absolute, so the run works from anywhere)."""
    if benchmark not in USER_BENCHMARKS:
        return options
    base = Path(spec_path).resolve().parent if spec_path is not None else Path.cwd()
    workdir = options.get("workdir")
    if workdir is None:
        return {**options, "workdir": str(base)}
    if isinstance(workdir, str) and not Path(workdir).is_absolute():
        return {**options, "workdir": str((base / workdir).resolve())}
    return options


def preflight_trial(benchmark: Benchmark, panels: Panels, benchmark_name: str) -> float:
    """Run one trial (the first search instance, else the first validation one; the centre of the space)
    and return its value; PreflightError with the benchmark's own error and how to fix it."""
    entry = (panels.search or panels.validation)[0]
    instance = benchmark.instance(entry.instance)
    space = benchmark.space(instance)
    config = space.decode([0.5] * space.dims)
    try:
        value = float(benchmark.objective(instance, entry.seed).evaluate(config))
    except ObjectiveError as exc:
        raise PreflightError(
            f"pre-flight trial failed: the {benchmark_name} benchmark could not run one trial "
            f"(instance {instance.key}, seed {entry.seed}, config {config}): {exc}\n"
            f"fix: {_fix_hint(benchmark_name)}; nothing was recorded") from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise PreflightError(f"pre-flight trial: the {benchmark_name} benchmark returned {value!r} for "
                             f"{config} on {instance.key}; it must return a finite number")
    return value


def _fix_hint(benchmark: str) -> str:
    if benchmark == "command":
        return ("run the command by hand in [benchmark] workdir (default: the spec file's folder) with "
                "BILEVEL_INPUT and BILEVEL_RESULT set, and check [benchmark] command and workdir")
    if benchmark == "python":
        return ("check [benchmark] callable ('package.module:function'), pythonpath and workdir "
                "(default: the spec file's folder, which is also importable)")
    return "check the [benchmark] options of the spec"
