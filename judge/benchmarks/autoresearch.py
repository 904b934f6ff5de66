"""``autoresearch-gpt``: Karpathy's GPT pretraining script (autoresearch ``train.py``) as an external command.

The user points ``checkout`` at their clone. The space is the script's
hyperparameter block: module-level assignments ``NAME = value`` for the names
in ``params`` (defaults: DEPTH, MATRIX_LR, EMBEDDING_LR, UNEMBEDDING_LR,
SCALAR_LR, WEIGHT_DECAY, WARMUP_RATIO, WARMDOWN_RATIO). For each trial the
judge copies ``script`` into a fresh temporary directory, rewrites those
assignments with the config's values (refusing the run if a name is not
assigned exactly once at top level), appends an epilogue *the judge wrote*
that dumps the module-level ``val_bpb`` to the result file the judge names,
and runs it with ``python`` in the checkout (``PYTHONPATH`` = checkout) under
``timeout_s``. Whatever the script prints is ignored: a "val_bpb: 0.1" on
stdout counts for nothing; a missing ``val_bpb`` fails the trial.

An instance is a replicate name (``r0..r{n-1}``). The pair's seed reaches the
script twice: as ``$BILEVEL_SEED`` and as the value of the script's top-level
seed constant (option ``seed_name``, default ``SEED``), rewritten with the
hyperparameter block. A script whose seed the judge cannot control is refused
when the benchmark is built: one that neither assigns the seed constant nor
reads ``BILEVEL_SEED``, or one that seeds with a literal
(``torch.manual_seed(42)``), which would make every replicate the same task.
Score: ``primary`` = the best trial's val_bpb (lower is
better; no known bound); ``auc`` the mean best-so-far.
"""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bilevel.inner.objective import ObjectiveError
from bilevel.inner.records import InnerResult
from bilevel.inner.space import Config, Space
from bilevel.judge.benchmarks.base import Benchmark, Instance, RunScore
from bilevel.judge.benchmarks.common import check_float, check_int, check_strings, curve
from bilevel.judge.benchmarks.external import parse_param, read_number, run_trial
from bilevel.judge.errors import BenchmarkError

DEFAULT_PARAMS = ("DEPTH:int:4:12", "MATRIX_LR:float:0.005:0.1:log", "EMBEDDING_LR:float:0.1:1.5:log",
                  "UNEMBEDDING_LR:float:0.001:0.02:log", "SCALAR_LR:float:0.1:1.0:log",
                  "WEIGHT_DECAY:float:0.0:0.4", "WARMUP_RATIO:float:0.0:0.2", "WARMDOWN_RATIO:float:0.2:0.8")
EMPTY_BPB = 100.0
SEED_ENV = "BILEVEL_SEED"
# a seeding call with a literal argument: torch.manual_seed(42), np.random.seed(0), random.seed(1337), ...
_LITERAL_SEED = re.compile(r"\b(?:manual_seed|manual_seed_all|seed|set_seed|PRNGKey)\(\s*-?\d+\s*\)")
EPILOGUE = """

# --- appended by the bilevel judge: the metric goes to the judge's file, not stdout ---
def _bilevel_report():
    import json as _j, os as _o, math as _m
    _v = globals().get("val_bpb")
    if _v is None:
        raise SystemExit("bilevel: the script finished without a module-level val_bpb")
    with open(_o.environ["BILEVEL_RESULT"], "w") as _f:
        _j.dump({"val_bpb": float(_v)}, _f)
_bilevel_report()
"""


def rewrite_block(source: str, config: Config) -> str:
    """``source`` with each top-level ``NAME = ...`` of the config replaced by the config's value."""
    for name, value in config.items():
        pattern = re.compile(rf"^{re.escape(name)}\s*=.*$", re.MULTILINE)
        hits = pattern.findall(source)
        if len(hits) != 1:
            raise ObjectiveError(f"the script must assign {name} exactly once at top level (found {len(hits)}); "
                                 "check 'params' against the script's hyperparameter block")
        match = pattern.search(source)
        assert match is not None
        source = f"{source[:match.start()]}{name} = {value!r}{source[match.end():]}"
    return source


def check_seed_control(source: str, script: str, seed_name: str) -> bool:
    """Whether the judge can set the script's seed; True when ``seed_name`` is assigned once at top level
    (rewritten per pair), False when only ``$BILEVEL_SEED`` carries it. BenchmarkError otherwise."""
    for lineno, line in enumerate(source.splitlines(), 1):
        hit = _LITERAL_SEED.search(line.split("#", 1)[0])
        if hit:
            raise BenchmarkError(
                f"autoresearch-gpt: {script} line {lineno} seeds with a literal ({hit.group(0)}), so every replicate "
                f"would be the same task; use {seed_name} there and assign {seed_name} = <int> once at top level "
                f"(the judge rewrites it with the pair's seed)")
    assigned = len(re.findall(rf"^{re.escape(seed_name)}\s*=", source, re.MULTILINE))
    if assigned == 1:
        return True
    if assigned == 0 and SEED_ENV in source:
        return False
    raise BenchmarkError(
        f"autoresearch-gpt: the judge cannot control the seed of {script}: assign {seed_name} = <int> exactly once "
        f"at top level (found {assigned}) and seed torch/numpy/random with it, or read ${SEED_ENV}; "
        "option 'seed_name' names another constant")


@dataclass(frozen=True)
class AutoresearchObjective:
    """One (replicate, seed): rewrite, run, and read val_bpb from the judge's result file."""

    checkout: str
    script: str
    python: str
    space_: Space
    replicate: str
    seed: int
    timeout_s: float
    seed_name: str = "SEED"
    rewrite_seed: bool = True

    @property
    def space(self) -> Space:
        return self.space_

    def evaluate(self, config: Config) -> float:
        source = (Path(self.checkout) / self.script).read_text(encoding="utf-8")
        check_seed_control(source, self.script, self.seed_name)  # the script may have changed since
        block = {**config, self.seed_name: self.seed} if self.rewrite_seed else dict(config)
        patched = rewrite_block(source, block) + EPILOGUE
        with tempfile.TemporaryDirectory(prefix="bilevel-gpt-") as tmp:
            path = Path(tmp) / Path(self.script).name
            path.write_text(patched, encoding="utf-8")
            env = {"PYTHONPATH": self.checkout, SEED_ENV: str(self.seed), "BILEVEL_REPLICATE": self.replicate}
            result = run_trial([self.python, str(path)], {"config": config, "seed": self.seed}, self.timeout_s,
                               self.checkout, env, result_name="val_bpb.json")
        return read_number(result, "val_bpb")


class AutoresearchGPT(Benchmark):
    """GPT pretraining (val_bpb) through the user's autoresearch checkout; see the module docstring."""

    name = "autoresearch-gpt"
    OPTIONS = ("checkout", "script", "python", "params", "replicates", "timeout_s", "seed_name")
    SCORE_TEXT = "validation bits per byte of the best trial (read from the judge's result file), lower is better"
    SUGGESTED = {"inner": {"budget": 4},
                 "panels": {"search_instances": 1, "validation_instances": 2, "test_instances": 1,
                            "seeds_per_instance": 1},
                 "run": {"generations": 1, "candidates": 2}}

    def __init__(self, checkout: Any = None, script: Any = "train.py", python: Any = sys.executable,
                 params: Any = DEFAULT_PARAMS, replicates: Any = 4, timeout_s: Any = 900.0,
                 seed_name: Any = "SEED") -> None:
        if not isinstance(checkout, str) or not (Path(checkout).expanduser() / str(script)).is_file():
            raise BenchmarkError(f"autoresearch-gpt needs option 'checkout', the directory of your autoresearch clone "
                                 f"holding {script!r}; got {checkout!r}")
        self.checkout = str(Path(checkout).expanduser().resolve())
        self.script, self.python = str(script), str(python)
        self.params = check_strings(self.name, "params", params)
        self.space_ = Space(tuple(parse_param(p) for p in self.params))
        self.replicates = check_int(self.name, "replicates", replicates, 1, 1000)
        self.timeout_s = check_float(self.name, "timeout_s", timeout_s, 0.01, 86400.0)
        if not isinstance(seed_name, str) or not seed_name.isidentifier():
            raise BenchmarkError(f"autoresearch-gpt option 'seed_name' must be a Python name, got {seed_name!r}")
        if seed_name in self.space_.names:
            raise BenchmarkError(f"autoresearch-gpt: the seed constant {seed_name} cannot also be a searched param")
        self.seed_name = seed_name
        source = (Path(self.checkout) / self.script).read_text(encoding="utf-8")
        self.rewrite_seed = check_seed_control(source, self.script, seed_name)

    def instances(self) -> list[Instance]:
        return [Instance(key=f"gpt-r{k}", group="gpt", data={"replicate": f"r{k}"}) for k in range(self.replicates)]

    def space(self, instance: Instance) -> Space:
        return self.space_

    def objective(self, instance: Instance, seed: int) -> AutoresearchObjective:
        return AutoresearchObjective(self.checkout, self.script, self.python, self.space_,
                                     str(instance.data["replicate"]), int(seed), self.timeout_s, self.seed_name,
                                     self.rewrite_seed)

    def score(self, instance: Instance, result: InnerResult) -> RunScore:
        c = curve(result, EMPTY_BPB)
        return RunScore(c.best, {"val_bpb": c.best, "auc": c.auc})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name,
                "options": {"checkout": self.checkout, "script": self.script, "python": self.python,
                            "params": list(self.params), "replicates": self.replicates, "timeout_s": self.timeout_s,
                            "seed_name": self.seed_name},
                "seed": f"${SEED_ENV}" + (f" and {self.seed_name} in the rewritten block" if self.rewrite_seed else ""),
                "versions": {"script_sha": _sha(Path(self.checkout) / self.script)},
                "n_instances": self.replicates, "direction": "minimize", "space": self.space_.to_json(),
                "objective": "val_bpb written by the judge's epilogue to the judge's result file",
                "bound": {"known_optimum": False, "empty_run": EMPTY_BPB},
                "score": {"primary": "best trial's val_bpb",
                          "subscores": {"val_bpb": "lower is better", "auc": "lower is better"}},
                "fidelity": "the script's own time budget; timeout_s caps a trial"}


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


