"""What the inner loop found (issue 13): `bilevel best`, `export --trials` read back with csv, results.tsv
columns, and each export writing only what was asked."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bilevel.runs.cli import main
from bilevel.runs.store import Store

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    store = tmp_path_factory.mktemp("found")
    assert main(["run", "--spec", str(SPEC), "--store", str(store), "--executor", "inprocess"]) == 0
    return store, Store.in_dir(store).run_ids()[-1]


def test_best_prints_the_best_config_per_instance(tiny_run: tuple[Path, str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    store, run_id = tiny_run
    capsys.readouterr()
    assert main(["best", run_id, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "score: log10 regret" in out and "kept stack" in out
    rows = [line.strip().split("\t") for line in out.splitlines() if line.startswith("  ") and "\t" in line]
    header, body = rows[0], rows[1:]
    assert header == ["panel", "instance", "group", "seed", "score", "config"]
    panels = [r[0] for r in body]
    assert {"search", "validation", "test"} <= set(panels) <= {"search", "validation", "confirmation", "test"}
    assert (panels.count("search"), panels.count("validation"), panels.count("test")) == (2, 4, 4)
    assert len({r[1] for r in body}) == len(body)  # one line per instance
    db = Store.in_dir(store)
    for _panel, instance, _group, _seed, score, config in body:
        runs = [e["result"] for e in db.evaluations(run_id)
                if e["instance"] == instance and e["stack_key"] == db.candidates(run_id)[0]["parent"]]
        best = min(runs, key=lambda r: r["primary"])
        assert float(score) == pytest.approx(best["primary"], rel=1e-5)
        assert json.loads(config) == best["best_config"] and set(json.loads(config)) == {"x0", "x1"}


def test_trials_export_reads_back_with_csv(tiny_run: tuple[Path, str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store, run_id = tiny_run
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "trials.csv"
    assert main(["export", run_id, "--store", str(store), "--trials", str(path)]) == 0
    assert not (tmp_path / "results.tsv").exists()  # only what was asked
    assert main(["export", run_id, "--store", str(store)]) == 0
    assert (tmp_path / "results.tsv").exists()  # asked for nothing else: results.tsv, as before
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0])[:9] == ["stack", "stack_mechanisms", "panel", "instance", "group", "seed",
                                          "index", "x0", "x1"]
    assert {"score", "kept", "source", "changed_by"} <= set(rows[0])
    evaluations = list(Store.in_dir(store).evaluations(run_id))
    assert len(rows) == sum(e["result"]["n_trials"] for e in evaluations)  # every trial of every inner run
    assert {r["panel"] for r in rows} >= {"search", "validation", "test"}
    traced = next(e for e in evaluations if e["result"].get("trace"))
    first = traced["result"]["trace"]["trials"][0]
    row = next(r for r in rows if (r["stack"], r["instance"], r["seed"], r["index"])
               == (traced["stack_key"], traced["instance"], str(traced["seed"]), "0"))
    assert float(row["x0"]) == first["config"]["x0"] and float(row["score"]) == first["score"]
    short = next(e for e in evaluations if not e["result"].get("trace"))
    last = short["result"]["trial_rows"][-1]
    row = next(r for r in rows if (r["stack"], r["instance"], r["seed"], r["index"])
               == (short["stack_key"], short["instance"], str(short["seed"]), str(len(short["result"]["trial_rows"]) - 1)))
    assert float(row["x1"]) == last[0]["x1"] and row["source"] == last[3]
    changed = [r for r in rows if r["changed_by"]]
    assert all(r["stack_mechanisms"] != "(none)" for r in changed)
    assert all(set(r["changed_by"].split("+")) <= set(r["stack_mechanisms"].split("+")) for r in changed)


def test_simplex_weights_become_columns() -> None:
    from bilevel.runs.found import _flat

    assert _flat({"lr": 0.1, "mix": {"web": 0.25, "code": 0.75}}) == {"lr": 0.1, "mix.web": 0.25, "mix.code": 0.75}


def test_results_tsv_names_its_columns(tiny_run: tuple[Path, str], tmp_path: Path) -> None:
    store, run_id = tiny_run
    tsv = tmp_path / "r.tsv"
    assert main(["export", run_id, "--store", str(store), "--out", str(tsv)]) == 0
    with open(tsv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert {"val_improvement", "val_ci_low", "val_ci_high", "val_pairs", "mechanisms", "test_improvement",
            "test_ci_low", "test_ci_high", "test_pairs"} <= set(rows[0])
    verdicts = Store.in_dir(store).verdicts(run_id)
    assert len(rows) == len(verdicts)
    for row, v in zip(rows, verdicts, strict=True):
        assert float(row["val_improvement"]) == pytest.approx(v["mean_improvement"], rel=1e-5)
        assert int(row["val_pairs"]) == v["n_pairs"]
