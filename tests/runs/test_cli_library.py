"""Your own mechanisms (issue 13): ``--library FILE`` / ``[run] library`` and ``bilevel judge FILE...``."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from bilevel.mechanisms.library import load_source
from bilevel.runs.cli import main

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"


def _mine(folder: Path) -> Path:
    path = folder / "my_tabu.py"
    path.write_text("# my own tabu list\n" + load_source("tabu"), encoding="utf-8")
    return path


def _block(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_library_flag_puts_my_file_in_the_authors_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = _mine(tmp_path)
    code = main(["run", "--spec", str(SPEC), "--store", str(tmp_path / "s"), "--library", str(mine),
                 "--generations", "1", "--candidates", "1"])
    out = capsys.readouterr().out
    assert code == 0
    run_id = _block(out)["run"]
    with sqlite3.connect(tmp_path / "s" / "bilevel.sqlite") as db:
        names = {r[0] for r in db.execute("SELECT name FROM mechanisms WHERE run_id = ?", (run_id,))}
        spec = db.execute("SELECT spec FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]
    assert "my_tabu" in names and "tabu" in names  # the author's library: the built-ins and my file
    assert str(mine) in spec  # the spec records the absolute path; the source is kept in the store


def test_spec_library_is_relative_to_the_spec_and_a_bad_file_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mechs").mkdir()
    (tmp_path / "mechs" / "broken.py").write_text("def propose(ctx):\n    return ctx._secret\n", encoding="utf-8")
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.read_text().replace("[run]\n", '[run]\nlibrary = ["mechs/broken.py"]\n'), encoding="utf-8")
    code = main(["run", "--spec", str(spec), "--store", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "broken.py fails the conformance check" in err and "sandbox-check" in err
    assert not (tmp_path / "s").exists()
    spec.write_text(SPEC.read_text().replace("[run]\n", '[run]\nlibrary = ["mechs/none.py"]\n'), encoding="utf-8")
    assert main(["run", "--spec", str(spec), "--store", str(tmp_path / "s")]) == 2
    assert f"cannot read mechanism file {tmp_path / 'mechs' / 'none.py'}" in capsys.readouterr().err


def test_judge_my_file_against_the_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = _mine(tmp_path)
    store = tmp_path / "s"
    assert main(["judge", str(mine), "--spec", str(SPEC), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    block = _block(out.split("--- judge ---", 1)[1])
    assert block["verdict"] in ("kept", "rejected") and block["reason"]
    for key in ("val_improvement", "test_improvement"):
        assert re.fullmatch(r"[+-]\d+\.\d{4}", block[key])
    for key in ("val_ci", "test_ci"):
        assert re.fullmatch(r"\[[+-]\d+\.\d{4}, [+-]\d+\.\d{4}\]", block[key])
    assert block["test_pairs"] == "4" and block["stack"] == "my_tabu"
    activation = re.match(r"activation (\d+\.\d)% of validation trials changed \((\d+)/(\d+)\)",
                          block["mechanism my_tabu"])
    assert activation and int(activation.group(2)) > 0  # the file changed the search
    assert "faults 0" in block["mechanism my_tabu"]
    assert main(["runs", "--store", str(store)]) == 0
    assert "finished (judged)" in capsys.readouterr().out
    assert main(["best", block["run"], "--store", str(store)]) == 0
    best = capsys.readouterr().out
    assert "judged stack: my_tabu | greedy" in best and "baseline: (no mechanisms)" in best
    assert main(["lineage", block["run"], "--store", str(store)]) == 0
    assert "by user: judge " in capsys.readouterr().out
    assert main(["judge", str(tmp_path / "nope.py"), "--spec", str(SPEC), "--store", str(store)]) == 2
    assert "cannot read mechanism file" in capsys.readouterr().err


def test_judge_confirms_a_passing_stack_on_fresh_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On the workflows spec trust_region passes validation, so the judge must confirm it on fresh pairs."""
    mine = tmp_path / "my_trust_region.py"
    mine.write_text(load_source("trust_region"), encoding="utf-8")
    workflows = SPEC.with_name("workflows.toml").read_text(encoding="utf-8")
    assert "confirmation_instances = 0" in workflows  # the workflows runs skip confirmation; the judge must not
    spec = tmp_path / "confirming.toml"
    spec.write_text(workflows.replace("confirmation_instances = 0", "confirmation_instances = 4"), encoding="utf-8")
    assert main(["judge", str(mine), "--spec", str(spec), "--store", str(tmp_path / "s")]) == 0
    block = _block(capsys.readouterr().out.split("--- judge ---", 1)[1])
    assert block["stage"] == "confirmation" and block["verdict"] in ("kept", "rejected")
    assert "selected on validation" in block["reason"]


def test_a_replay_uses_the_recorded_library_not_the_files(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    mine = _mine(tmp_path)
    store = tmp_path / "s"
    assert main(["run", "--spec", str(SPEC), "--store", str(store), "--library", str(mine),
                 "--generations", "1", "--candidates", "2", "--executor", "inprocess"]) == 0
    run_id = _block(capsys.readouterr().out)["run"]
    mine.unlink()  # the file is gone; the run recorded its source
    assert main(["replay", run_id, "--store", str(store)]) == 0
    assert "replay: identical" in capsys.readouterr().out
