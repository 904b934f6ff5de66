"""A user's own benchmark from the spec: ``command`` (a shell command) and ``python`` (an importable callable).

The contract of one trial: the judge writes ``{"config", "instance", "seed"}``
as JSON to a file named by ``$BILEVEL_INPUT``, runs the command (with a
timeout, in a fresh temporary directory), and reads the result from the file
the judge names in ``$BILEVEL_RESULT``, never from stdout::

    {"score": 0.42, "subscores": {"domain:code": 0.8}}

``score`` (or the key named by the ``metric`` option) is a finite number;
``direction = "maximize"`` flips its sign so the judge always minimises.
A missing or malformed result, a non-zero exit or a timeout fails that trial
(ObjectiveError) with a message naming the problem and the command's stderr
tail. ``python`` runs ``module:function`` the same way through
``judge/benchmarks/pyrunner.py`` (run as a script) so it gets the same timeout; the
function takes ``(config, instance, seed)`` and returns a number or such a dict.

Options (spec ``[benchmark]``): ``command``/``callable``, ``params`` (a list
of ``"name:float:low:high[:log]"``, ``"name:int:low:high[:log]"``,
``"name:cat:a|b|c"`` or ``"name:simplex:a|b|c"``), ``instances`` (names,
``"group/name"`` to set a group; default 12 instances ``i0..i11``),
``timeout_s``, ``metric``, ``direction``, ``higher_is_better`` (sub-score
names whose direction is up; the rest are lower-is-better), ``workdir`` (the folder
trials run in; ``bilevel run`` sets it to the spec file's folder when the spec
does not, and for ``python`` it is importable too), ``pythonpath`` (python only).

Score of one inner run: ``primary`` = the best trial's (signed) score;
sub-scores are the best trial's; ``auc`` the mean best-so-far.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bilevel.inner.objective import ObjectiveError
from bilevel.inner.records import InnerResult
from bilevel.inner.space import (
    CategoricalParam,
    Config,
    FloatParam,
    IntParam,
    Param,
    SimplexParam,
    Space,
    SpaceError,
)
from bilevel.judge.benchmarks.base import Benchmark, Instance, RunScore
from bilevel.judge.benchmarks.common import check_choice, check_float, check_strings, curve
from bilevel.judge.errors import BenchmarkError
from bilevel.sandbox.lifetime import preexec_die_with_parent

EMPTY_SCORE = 1e9
STDERR_TAIL = 600


def parse_param(text: str) -> Param:
    """One compact parameter: ``lr:float:1e-4:1e-1:log``, ``n:int:1:8``, ``opt:cat:adam|sgd``, ``mix:simplex:a|b``."""
    parts = text.split(":")
    try:
        name, kind = parts[0], parts[1]
        if kind in ("float", "int") and len(parts) in (4, 5):
            log = len(parts) == 5 and parts[4] == "log"
            if len(parts) == 5 and not log:
                raise ValueError("the fifth field may only be 'log'")
            if kind == "float":
                return FloatParam(name, float(parts[2]), float(parts[3]), log)
            return IntParam(name, int(parts[2]), int(parts[3]), log)
        if kind == "cat" and len(parts) == 3:
            return CategoricalParam(name, tuple(_scalar(c) for c in parts[2].split("|")))
        if kind == "simplex" and len(parts) == 3:
            return SimplexParam(name, tuple(parts[2].split("|")))
        raise ValueError("unknown kind or wrong number of fields")
    except (IndexError, ValueError) as exc:
        raise BenchmarkError(f"bad parameter {text!r} ({exc}); write 'lr:float:1e-4:1e-1:log', 'n:int:1:8', "
                             "'opt:cat:adam|sgd' or 'mix:simplex:web|code|math'") from exc


def _scalar(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def run_trial(argv: list[str] | str, payload: dict[str, Any], timeout_s: float, workdir: str | None,
              extra_env: dict[str, str] | None = None, result_name: str = "result.json") -> dict[str, Any]:
    """Run one trial of an external command and return its parsed result dict (ObjectiveError on any fault)."""
    with tempfile.TemporaryDirectory(prefix="bilevel-trial-") as tmp:
        inp, out = Path(tmp) / "input.json", Path(tmp) / result_name
        inp.write_text(json.dumps(payload, sort_keys=True), encoding="utf-8")
        env = {**os.environ, **(extra_env or {}), "BILEVEL_INPUT": str(inp), "BILEVEL_RESULT": str(out)}
        try:
            proc = subprocess.run(argv, shell=isinstance(argv, str), cwd=workdir or tmp, env=env,
                                  capture_output=True, text=True, timeout=timeout_s, check=False,
                                  preexec_fn=preexec_die_with_parent())  # dies with us (issue 11)
        except subprocess.TimeoutExpired as exc:
            raise ObjectiveError(f"the benchmark command timed out after {timeout_s:g} s (raise timeout_s, "
                                 f"or make the trial cheaper): {_shown(argv)}") from exc
        except OSError as exc:
            raise ObjectiveError(f"the benchmark command could not start: {exc}: {_shown(argv)}") from exc
        tail = proc.stderr[-STDERR_TAIL:].strip()
        if proc.returncode != 0:
            raise ObjectiveError(f"the benchmark command exited with status {proc.returncode}: {_shown(argv)}; "
                                 f"stderr: {tail or '(empty)'}")
        if not out.is_file():
            raise ObjectiveError(f"the benchmark command wrote no result file; it must write JSON like "
                                 f'{{"score": 0.5}} to the path in $BILEVEL_RESULT (stdout is ignored); stderr: {tail}')
        try:
            result = json.loads(out.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ObjectiveError(f"the benchmark's result file is not valid JSON ({exc}); write "
                                 f'{{"score": 0.5, "subscores": {{...}}}}') from exc
    if not isinstance(result, dict):
        raise ObjectiveError(f"the benchmark's result must be a JSON object, got {type(result).__name__}")
    return result


def _shown(argv: list[str] | str) -> str:
    return argv if isinstance(argv, str) else shlex.join(argv)


def read_number(result: dict[str, Any], key: str) -> float:
    value = result.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ObjectiveError(f"the benchmark's result needs a finite number under {key!r}; got {value!r} "
                             f"(keys: {sorted(result)})")
    return float(value)


def read_subscores(result: dict[str, Any]) -> dict[str, float]:
    subs = result.get("subscores", {})
    if not isinstance(subs, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in subs.values()):
        raise ObjectiveError(f"'subscores' must map names to finite numbers; got {subs!r}")
    return {str(k): float(v) for k, v in subs.items()}


# Sub-scores seen per (benchmark, instance, seed, config) in this process: ``score`` reads the best trial's.
_SUBSCORES: dict[str, dict[str, float]] = {}


def _memo_key(name: str, instance: str, config: Config, value: float) -> str:
    """Keyed by the value too: the InnerResult the score sees carries the config and value, not the seed."""
    return json.dumps([name, instance, config, repr(float(value))], sort_keys=True, default=str)


@dataclass(frozen=True)
class CommandObjective:
    """One (instance, seed) of a command benchmark; picklable."""

    bench: str
    argv: tuple[str, ...] | str
    space_: Space
    instance: str
    seed: int
    timeout_s: float
    metric: str
    sign: float
    workdir: str | None

    @property
    def space(self) -> Space:
        return self.space_

    def evaluate(self, config: Config) -> float:
        argv = self.argv if isinstance(self.argv, str) else list(self.argv)
        result = run_trial(argv, {"config": config, "instance": self.instance, "seed": self.seed},
                           self.timeout_s, self.workdir)
        value = self.sign * read_number(result, self.metric)
        _SUBSCORES[_memo_key(self.bench, self.instance, config, value)] = read_subscores(result)
        return value


@dataclass(frozen=True)
class PythonObjective(CommandObjective):
    """One (instance, seed) of a python benchmark: a trial is one request to this process's long-lived
    child for the callable (``pychild``); picklable."""

    target: str = ""
    pythonpath: tuple[str, ...] = ()

    def evaluate(self, config: Config) -> float:
        from bilevel.judge.benchmarks.pychild import child_for

        result = child_for(self.target, self.pythonpath, self.workdir).call(
            {"config": config, "instance": self.instance, "seed": self.seed}, self.timeout_s)
        value = self.sign * read_number(result, self.metric)
        _SUBSCORES[_memo_key(self.bench, self.instance, config, value)] = read_subscores(result)
        return value


class CommandBenchmark(Benchmark):
    """The user's benchmark as a shell command (see the module docstring for the contract)."""

    name = "command"
    OPTIONS: tuple[str, ...] = ("command", "params", "instances", "timeout_s", "metric", "direction",
                                "higher_is_better", "workdir")
    SCORE_TEXT = "the command's score of the best trial (sign flipped if maximised), lower is better"
    SUGGESTED = {"inner": {"budget": 10},
                 "panels": {"search_instances": 2, "validation_instances": 5, "test_instances": 5,
                            "seeds_per_instance": 1},
                 "run": {"generations": 2, "candidates": 2}}

    def __init__(self, command: Any = None, params: Any = None, instances: Any = None, timeout_s: Any = 60.0,
                 metric: Any = "score", direction: Any = "minimize", higher_is_better: Any = (),
                 workdir: Any = None) -> None:
        self._init_common(params, instances, timeout_s, metric, direction, higher_is_better, workdir)
        if not isinstance(command, str) or not command.strip():
            raise BenchmarkError("the command benchmark needs option 'command', a shell command that reads "
                                 "$BILEVEL_INPUT and writes JSON to $BILEVEL_RESULT")
        self.command: str = command
        self.argv: tuple[str, ...] | str = command

    def _init_common(self, params: Any, instances: Any, timeout_s: Any, metric: Any, direction: Any,
                     higher_is_better: Any, workdir: Any) -> None:
        if not params:
            raise BenchmarkError(f"the {self.name} benchmark needs option 'params', e.g. "
                                 "['lr:float:1e-4:1e-1:log', 'layers:int:1:8']")
        self.params = check_strings(self.name, "params", params)
        try:
            self.space_ = Space(tuple(parse_param(p) for p in self.params))
        except SpaceError as exc:
            raise BenchmarkError(f"{self.name} option 'params': {exc}") from exc
        names = check_strings(self.name, "instances", instances) if instances else tuple(f"i{k}" for k in range(12))
        if len(set(names)) != len(names):
            raise BenchmarkError(f"{self.name} option 'instances' repeats a name: {list(names)}")
        self.instance_names = names
        self.timeout_s = check_float(self.name, "timeout_s", timeout_s, 0.01, 86400.0)
        self.metric = str(metric)
        self.direction = check_choice(self.name, "direction", direction, ("minimize", "maximize"))
        self.higher_is_better = check_strings(self.name, "higher_is_better", higher_is_better)
        if workdir is not None and not Path(str(workdir)).is_dir():
            raise BenchmarkError(f"{self.name} option 'workdir' {workdir!r} is not a directory")
        self.workdir = None if workdir is None else str(workdir)

    def instances(self) -> list[Instance]:
        out = []
        for n in self.instance_names:
            group = n.split("/", 1)[0] if "/" in n else n
            out.append(Instance(key=f"{self.name}-{n}", group=group, data={"name": n}))
        return out

    def space(self, instance: Instance) -> Space:
        return self.space_

    def objective(self, instance: Instance, seed: int) -> CommandObjective:
        return CommandObjective(self.name, self.argv, self.space_, str(instance.data["name"]), int(seed),
                                self.timeout_s, self.metric, -1.0 if self.direction == "maximize" else 1.0,
                                self.workdir)

    def score(self, instance: Instance, result: InnerResult) -> RunScore:
        c = curve(result, EMPTY_SCORE)
        subs: dict[str, float] = {"auc": c.auc}
        if c.best_trial is not None:
            key = _memo_key(self.name, str(instance.data["name"]), c.best_trial.config, c.best)
            subs.update(_SUBSCORES.get(key, {}))
        return RunScore(c.best, subs)

    def data_files(self) -> list[str]:
        """The files the command names (its script, data files), from ``workdir`` or here (hashed by the manifest)."""
        words = shlex.split(self.command)[1:]
        found = [Path(self.workdir or ".") / w for w in words] + [Path(w) for w in words]
        return sorted({str(f.resolve()) for f in found if f.is_file()})

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "options": {"command": self.command if isinstance(self.argv, str) else list(self.argv),
                        "params": list(self.params), "instances": list(self.instance_names),
                        "timeout_s": self.timeout_s, "metric": self.metric, "direction": self.direction,
                        "higher_is_better": list(self.higher_is_better), "workdir": self.workdir},
            "versions": {"python": sys.version.split()[0]},
            "n_instances": len(self.instance_names),
            "direction": self.direction,
            "space": self.space_.to_json(),
            "objective": "JSON result file named by $BILEVEL_RESULT (stdout is ignored)",
            "bound": {"known_optimum": False, "empty_run": EMPTY_SCORE},
            "score": {"primary": f"best trial's {self.metric} ({self.direction}d; minimised after sign)",
                      "subscores": {"auc": "lower is better",
                                    "*": "the best trial's sub-scores: higher is better for "
                                         f"{list(self.higher_is_better)}, lower for the rest"}},
            "fidelity": "evaluations: the inner loop's trial budget",
        }


class PythonBenchmark(CommandBenchmark):
    """The user's benchmark as an importable callable ``module:function``, run in a child process."""

    name = "python"
    OPTIONS = ("callable", "params", "instances", "timeout_s", "metric", "direction", "higher_is_better",
               "workdir", "pythonpath")
    SCORE_TEXT = "the callable's score of the best trial (sign flipped if maximised), lower is better"

    def __init__(self, callable: Any = None, params: Any = None, instances: Any = None,  # noqa: A002
                 timeout_s: Any = 60.0, metric: Any = "score", direction: Any = "minimize",
                 higher_is_better: Any = (), workdir: Any = None, pythonpath: Any = ()) -> None:
        self._init_common(params, instances, timeout_s, metric, direction, higher_is_better, workdir)
        if not isinstance(callable, str) or ":" not in callable:
            raise BenchmarkError("the python benchmark needs option 'callable' as 'package.module:function'")
        self.callable = callable
        self.pythonpath = check_strings(self.name, "pythonpath", pythonpath)
        self.command = callable
        # run the runner as a plain script: ``-m`` would import the whole benchmark registry first
        self.argv = (sys.executable, str(Path(__file__).with_name("pyrunner.py")), callable, *self.pythonpath)

    def objective(self, instance: Instance, seed: int) -> PythonObjective:
        return PythonObjective(self.name, self.argv, self.space_, str(instance.data["name"]), int(seed),
                               self.timeout_s, self.metric, -1.0 if self.direction == "maximize" else 1.0,
                               self.workdir, self.callable, self.pythonpath)

    def data_files(self) -> list[str]:
        """The callable's module file, found on ``pythonpath`` or in ``workdir`` (hashed by the manifest)."""
        module = self.callable.split(":", 1)[0].replace(".", "/") + ".py"
        found = [Path(d) / module for d in (*self.pythonpath, self.workdir or ".")]
        return sorted({str(f.resolve()) for f in found if f.is_file()})

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["options"] = {**d["options"], "callable": self.callable, "pythonpath": list(self.pythonpath)}
        d["options"].pop("command", None)
        return d
