"""command, python and autoresearch-gpt: the result-file contract, malformed results, timeouts, scores."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from bilevel.inner.loop import InnerSettings
from bilevel.inner.objective import ObjectiveError
from bilevel.inner.search_config import SearchConfig
from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.benchmarks.autoresearch import rewrite_block
from bilevel.judge.benchmarks.external import parse_param
from bilevel.judge.errors import BenchmarkError
from bilevel.judge.evaluate import evaluate_entry
from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Stack

DATA = Path(__file__).parent.parent / "data"
COMMAND = f"{sys.executable} {DATA / 'bench_command.py'}"


def _command(**extra: object) -> object:
    opts: dict[str, object] = {"command": COMMAND, "params": ["x:float:0:1"],
                               "instances": ["ok/a", "ok/b", "sleepy", "silent", "garbled", "stringy", "crash"],
                               "timeout_s": 5.0, "higher_is_better": ["domain:code"]}
    return get_benchmark("command", opts | extra)


def _obj(bench: object, name: str, seed: int = 0) -> object:
    b = bench  # type: ignore[assignment]
    return b.objective(b.instance(f"command-{name}"), seed)  # type: ignore[attr-defined]


def test_command_reads_the_result_file_not_stdout() -> None:
    bench = _command()
    value = _obj(bench, "ok/a").evaluate({"x": 0.5})  # type: ignore[attr-defined]
    assert value == pytest.approx(0.04)
    assert {i.group for i in bench.instances()} >= {"ok", "sleepy"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "message"), [
    ("silent", "wrote no result file"),
    ("garbled", "not valid JSON"),
    ("stringy", "finite number under 'score'"),
    ("crash", "exited with status 1.*boom: bad input"),
])
def test_command_malformed_results_fail_the_trial_with_a_clear_message(name: str, message: str) -> None:
    with pytest.raises(ObjectiveError, match=message):
        _obj(_command(), name).evaluate({"x": 0.5})  # type: ignore[attr-defined]


def test_command_timeout_fails_the_trial() -> None:
    with pytest.raises(ObjectiveError, match="timed out after 0.5 s"):
        _obj(_command(timeout_s=0.5), "sleepy").evaluate({"x": 0.5})  # type: ignore[attr-defined]


def test_command_maximize_flips_the_sign_and_options_are_checked() -> None:
    value = _obj(_command(direction="maximize"), "ok/a").evaluate({"x": 0.5})  # type: ignore[attr-defined]
    assert value == pytest.approx(-0.04)
    with pytest.raises(BenchmarkError, match="needs option 'command'"):
        get_benchmark("command", {"params": ["x:float:0:1"]})
    with pytest.raises(BenchmarkError, match="bad parameter"):
        get_benchmark("command", {"command": "true", "params": ["x:float:0"]})
    assert parse_param("mix:simplex:a|b").to_json()["domains"] == ["a", "b"]  # type: ignore[union-attr]
    assert parse_param("opt:cat:adam|sgd|1").to_json()["choices"] == ["adam", "sgd", 1]  # type: ignore[union-attr]


def test_command_inner_run_scores_with_the_best_trials_subscores() -> None:
    bench = _command()
    settings = InnerSettings(budget=4, search=SearchConfig())
    res = evaluate_entry(bench, Stack((), SearchConfig()), PanelEntry("command-ok/a", "ok", 7), settings)  # type: ignore[arg-type]
    assert res.n_trials == 4 and math.isfinite(res.primary)
    assert "domain:code" in res.subscores and "auc" in res.subscores
    failing = evaluate_entry(bench, Stack((), SearchConfig()), PanelEntry("command-crash", "crash", 7),  # type: ignore[arg-type]
                             InnerSettings(budget=2, search=SearchConfig()))
    assert failing.primary == 1e9  # every trial failed: the empty-run score


def test_python_callable_runs_in_a_child_with_the_same_contract() -> None:
    bench = get_benchmark("python", {"callable": "bench_callable:quadratic", "params": ["x:float:0:1"],
                                     "pythonpath": [str(DATA)], "timeout_s": 30.0})
    obj = bench.objective(bench.instances()[0], 0)
    assert obj.evaluate({"x": 0.2}) == pytest.approx(0.09)
    plain = get_benchmark("python", {"callable": "bench_callable:plain", "params": ["x:float:0:1"],
                                     "pythonpath": [str(DATA)]})
    assert plain.objective(plain.instances()[0], 0).evaluate({"x": 0.25}) == 0.25
    missing = get_benchmark("python", {"callable": "bench_callable:nope", "params": ["x:float:0:1"],
                                       "pythonpath": [str(DATA)]})
    with pytest.raises(ObjectiveError, match="cannot load 'bench_callable:nope'"):
        missing.objective(missing.instances()[0], 0).evaluate({"x": 0.25})


def test_autoresearch_rewrites_the_block_and_ignores_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = get_benchmark("autoresearch-gpt", {"checkout": str(DATA / "autoresearch_standin"), "timeout_s": 60.0})
    obj = bench.objective(bench.instances()[0], 0)
    cfg = {"DEPTH": 8, "MATRIX_LR": 0.04, "EMBEDDING_LR": 0.6, "UNEMBEDDING_LR": 0.004, "SCALAR_LR": 0.5,
           "WEIGHT_DECAY": 0.0, "WARMUP_RATIO": 0.0, "WARMDOWN_RATIO": 0.5}
    assert obj.evaluate(cfg) == pytest.approx(1.0)  # not the 0.000001 the script printed
    assert obj.evaluate(cfg | {"MATRIX_LR": 0.08}) == pytest.approx(1.0 + 0.5 * math.log(2))
    monkeypatch.setenv("STANDIN_FORGET", "1")
    with pytest.raises(ObjectiveError, match="without a module-level val_bpb"):
        obj.evaluate(cfg)
    with pytest.raises(ObjectiveError, match="exactly once"):
        rewrite_block("A = 1\nA = 2\n", {"A": 3})
    with pytest.raises(BenchmarkError, match="autoresearch clone"):
        get_benchmark("autoresearch-gpt", {"checkout": "/nonexistent"})


def test_autoresearch_passes_the_pairs_seed_and_refuses_an_uncontrolled_seed(tmp_path: Path) -> None:
    bench = get_benchmark("autoresearch-gpt", {"checkout": str(DATA / "autoresearch_standin"), "timeout_s": 60.0})
    cfg = {"DEPTH": 8, "MATRIX_LR": 0.04, "EMBEDDING_LR": 0.6, "UNEMBEDDING_LR": 0.004, "SCALAR_LR": 0.5,
           "WEIGHT_DECAY": 0.0, "WARMUP_RATIO": 0.0, "WARMDOWN_RATIO": 0.5}
    inst = bench.instances()[0]
    # the stand-in adds 1e-4 * (SEED % 7) and exits if $BILEVEL_SEED differs from the rewritten SEED
    assert bench.objective(inst, 3).evaluate(cfg) == pytest.approx(1.0003)
    assert bench.objective(inst, 5).evaluate(cfg) == pytest.approx(1.0005)
    assert bench.describe()["seed"] == "$BILEVEL_SEED and SEED in the rewritten block"
    src = (DATA / "autoresearch_standin" / "train.py").read_text()
    cases = {
        "literal": (src + "\nimport torch\ntorch.manual_seed(42)\n", r"line \d+ seeds with a literal \(manual_seed\(42\)\)"),
        "no-seed": (src.replace("SEED = 42\n", "").replace("BILEVEL_SEED", "OTHER"), "cannot control the seed"),
        "twice": (src.replace("SEED = 42\n", "SEED = 1\nSEED = 2\n"), r"exactly once at top level \(found 2\)"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "train.py").write_text(text)
        with pytest.raises(BenchmarkError, match=message):
            get_benchmark("autoresearch-gpt", {"checkout": str(tmp_path / name)})
    env_only = tmp_path / "env-only"  # no constant, but the script reads $BILEVEL_SEED itself: accepted
    env_only.mkdir()
    (env_only / "train.py").write_text("import os\nDEPTH = 8\nval_bpb = 1.0 + 1e-4 * int(os.environ['BILEVEL_SEED'])\n")
    by_env = get_benchmark("autoresearch-gpt", {"checkout": str(env_only), "params": ["DEPTH:int:4:12"]})
    assert not by_env.rewrite_seed and by_env.describe()["seed"] == "$BILEVEL_SEED"
    assert by_env.objective(by_env.instances()[0], 7).evaluate({"DEPTH": 6}) == pytest.approx(1.0007)
    with pytest.raises(BenchmarkError, match="cannot also be a searched param"):
        get_benchmark("autoresearch-gpt", {"checkout": str(DATA / "autoresearch_standin"), "seed_name": "DEPTH"})
