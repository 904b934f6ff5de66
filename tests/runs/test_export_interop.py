"""Interop exports through the command line: COCO data read back by cocopp, and an OptunaHub package."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bilevel.runs.cli import main
from bilevel.runs.coco_export import CocoRun, write_coco_algorithm
from bilevel.runs.history import load_history, test_bench
from bilevel.runs.store import Store, StoreError

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"


@pytest.fixture(scope="module")
def bbob_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """One generation of the tiny BBOB spec; returns (store, run id, the first candidate's stack id)."""
    store = tmp_path_factory.mktemp("interop")
    assert main(["run", "--spec", str(SPEC), "--store", str(store), "--generations", "1"]) == 0
    db = Store.in_dir(store)
    run_id = db.run_ids()[-1]
    cand = db.candidates(run_id)[0]
    return store, run_id, cand["stack_key"]


def _info_runs(info: Path) -> list[tuple[int, int, float]]:
    """(instance id, evaluations, final f - fopt) for every run listed in a COCO ``.info`` file."""
    text = info.read_text()
    return [(int(i), int(n), float(f)) for i, n, f in re.findall(r"(\d+):(\d+)\|([-+.\deE]+)", text)]


@pytest.mark.slow
def test_export_coco_cli_and_cocopp_round_trip(bbob_run: tuple[Path, str, str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    store, run_id, stack_id = bbob_run
    out_dir = tmp_path / "coco"
    assert main(["export", run_id, "--store", str(store), "--out", str(tmp_path / "r.tsv"),
                 "--coco", str(out_dir), "--stack", stack_id[:8]]) == 0
    printed = capsys.readouterr().out
    algs = sorted(p for p in out_dir.iterdir() if p.is_dir())
    assert [a.name for a in algs] == [f"{run_id}-baseline-greedy", f"{run_id}-stack-{stack_id[:8]}"]
    assert "python -m cocopp" in printed

    db = Store.in_dir(store)
    history = load_history(db, run_id)
    stack = history.candidate_stack(db, stack_id[:8])[0]
    with test_bench(db, run_id) as bench:
        expected = {alg: bench.results(s) for alg, s in zip(algs, (history.baseline, stack), strict=True)}
    for alg, results in expected.items():
        infos = sorted(alg.glob("*.info"))
        assert infos and all(f"algId = '{alg.name}'" in i.read_text() for i in infos)
        assert all((alg / f"data_f{i.stem.split('_f')[1]}").glob("*.tdat") for i in infos)
        logged = sorted(r for i in infos for r in _info_runs(i))
        recorded = sorted((int(r.instance.split("-i")[1]), r.n_trials, r.primary) for r in results)
        assert len(logged) == len(recorded) == len(bench.panel)
        for (inst, evals, f), (inst_r, n_r, primary) in zip(logged, recorded, strict=True):
            assert (inst, evals) == (inst_r, n_r)  # every trial of the test-panel run is one COCO evaluation
            # .info keeps two significant digits of the final regret; the judge's score is its log10
            assert math.log10(max(f, 1e-8)) == pytest.approx(primary, abs=0.03)

    pp = tmp_path / "pp"
    done = subprocess.run([sys.executable, "-m", "cocopp", "-o", str(pp), *map(str, algs)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (pp / "index.html").is_file()
    assert any(p.is_dir() for p in pp.iterdir()), "cocopp wrote no comparison folder"

    with pytest.raises(StoreError, match="already exists"):  # a second export never mixes two experiments
        write_coco_algorithm(out_dir, algs[0].name, [CocoRun(1, 2, 1, ((0.0, 0.0),))])


def test_export_coco_refuses_other_benchmarks(tmp_path: Path) -> None:
    from bilevel.runs.coco_export import algorithm_name, export_coco

    assert algorithm_name("a b/c|d") == "a-b-c-d"
    store = Store.in_dir(tmp_path)
    store.create_run("r1", {"run": {"benchmark": "datamix-lm"}}, {}, "h")
    with pytest.raises(StoreError, match="needs a bbob run"):
        export_coco(store, "r1", tmp_path / "out")


@pytest.mark.slow
def test_export_optunahub_cli(bbob_run: tuple[Path, str, str], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    optunahub = pytest.importorskip("optunahub")
    store, run_id, stack_id = bbob_run
    pkg = tmp_path / "registry" / "samplers" / "from_cli"
    assert main(["export", run_id, "--store", str(store), "--out", str(tmp_path / "r.tsv"),
                 "--optunahub", str(pkg), "--stack", stack_id[:8]]) == 0
    assert "OptunaHub package" in capsys.readouterr().out
    module = optunahub.load_local_module(package="samplers/from_cli", registry_root=str(tmp_path / "registry"))
    sampler = module.BilevelStackSampler(seed=1)
    db = Store.in_dir(store)
    assert sampler.stack.key == load_history(db, run_id).candidate_stack(db, stack_id[:8])[0].key
    assert sampler.budget == 16  # the run's inner budget travels with the package
    sampler.close()
