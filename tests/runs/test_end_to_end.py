"""The whole engine through its command line: run, show, export, kill and resume, a tampered judge."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import bilevel.runs.driver
from bilevel.judge.errors import ManifestMismatch
from bilevel.judge.manifest import build_manifest
from bilevel.runs.cli import main
from bilevel.runs.store import Store

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"
SUMMARY_KEYS = ("run", "generations", "candidates", "kept", "val_improvement", "val_ci", "test_improvement",
                "test_ci", "wall_s")


def _summary(out: str) -> dict[str, str]:
    block = out.split("--- summary ---", 1)[1]
    return dict(line.split(": ", 1) for line in block.strip().splitlines())


def _run(store: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[str, dict[str, str]]:
    assert main(["run", "--spec", str(SPEC), "--store", str(store), *extra]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run: ")
    return out, _summary(out)


def _decisions(store: Path, run_id: str) -> list[tuple[Any, ...]]:
    s = Store.in_dir(store)
    return [(v["generation"], v["index"], v["stack_key"], v["keep"], v["stage"], v["reason"], v["ci_low"])
            for v in s.verdicts(run_id)]


@pytest.mark.slow
def test_run_show_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, summary = _run(tmp_path, capsys)
    for key in SUMMARY_KEYS:
        assert key in summary, f"summary lacks {key}: {summary}"
    assert summary["generations"] == "2"
    assert int(summary["candidates"]) >= 4
    run_id = summary["run"]
    store = Store.in_dir(tmp_path)
    verdicts = store.verdicts(run_id)
    assert len(verdicts) == int(summary["candidates"])
    assert all(v["manifest_hash"] == store.run(run_id).manifest_hash for v in verdicts)
    assert all(v["reason"] for v in verdicts)

    assert main(["show", run_id, "--store", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "lineage:" in shown and "baseline" in shown
    assert "sandbox layers: policy," in shown  # recorded per evaluation (issue 6)
    assert verdicts[0]["reason"][:40] in shown

    tsv = tmp_path / "results.tsv"
    assert main(["export", run_id, "--store", str(tmp_path), "--out", str(tsv)]) == 0
    rows = tsv.read_text().splitlines()
    assert rows[0].split("\t")[:3] == ["id", "parent", "generation"]
    assert len(rows) == 1 + len(verdicts)


def _evaluations(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return int(con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _, reference = _run(whole, capsys)

    proc = subprocess.Popen([sys.executable, "-m", "bilevel.runs.cli", "run", "--spec", str(SPEC), "--store", str(killed)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("run: ")
    run_id = first.split(": ", 1)[1].strip()
    deadline = time.monotonic() + 120
    while _evaluations(killed / "bilevel.sqlite") < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _evaluations(killed / "bilevel.sqlite")
    assert partial >= 12, "the run finished or stalled before it could be killed mid-way"

    assert main(["resume", run_id, "--store", str(killed)]) == 0
    resumed = _summary(capsys.readouterr().out)
    for key in SUMMARY_KEYS:
        if key not in ("run", "wall_s"):
            assert resumed[key] == reference[key], key
    assert _decisions(killed, run_id) == _decisions(whole, reference["run"])


@pytest.mark.slow
def test_a_changed_judge_stops_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    assert main(["run", "--spec", str(SPEC), "--store", str(store), "--generations", "1", "--candidates", "1"]) == 0
    run_id = capsys.readouterr().out.splitlines()[0].split(": ")[1]
    tampered = tmp_path / "judge"
    shutil.copytree(Path(bilevel.runs.driver.__file__).resolve().parents[1] / "judge", tampered)
    with (tampered / "decision.py").open("a") as f:
        f.write("\n# a one-line change to the judge\n")
    monkeypatch.setattr(bilevel.runs.driver, "build_manifest",
                        lambda b, p, t: build_manifest(b, p, t, judge_dir=tampered))
    with pytest.raises(ManifestMismatch):
        bilevel.runs.driver.execute(Store.in_dir(store), run_id)
    assert main(["resume", run_id, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "judge source" in err


def test_bad_input_gets_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--benchmark", "nope", "--store", str(tmp_path)]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert main(["run", "--author", "nobody", "--store", str(tmp_path), "--generations", "1"]) == 2
    assert "unknown author 'nobody'" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[inner]\nbudgett = 3\n")
    assert main(["run", "--spec", str(bad), "--store", str(tmp_path)]) == 2
    assert "unknown key 'budgett'" in capsys.readouterr().err
    assert main(["show", "no-such-run", "--store", str(tmp_path)]) == 2
    assert "no run store at" in capsys.readouterr().err  # the refused runs left no store behind


def test_sandbox_check_reports_one_mechanism(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\ndef propose(ctx, state):\n    return None\n")
    assert main(["sandbox-check", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "policy_violation" and "'os'" in report["message"]
    good = Path(bilevel.runs.driver.__file__).resolve().parents[1] / "mechanisms" / "builtin" / "tabu.py"
    assert main(["sandbox-check", str(good)]) == 0
    assert "status: ok" in capsys.readouterr().out
    assert main(["sandbox-check", str(tmp_path / "missing.py")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.slow
def test_wall_time_budget_stops_cleanly_and_resume_raises_it(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out, summary = _run(tmp_path, capsys, "--generations", "1", "--candidates", "1", "--wall-time", "0.001")
    assert summary["generations"] == "0"
    assert summary["stopped"].startswith("wall-time budget")
    store = Store.in_dir(tmp_path)
    assert [e["kind"] for e in store.events(summary["run"], "budget_stop")] == ["budget_stop"]
    assert main(["resume", summary["run"], "--store", str(tmp_path), "--wall-time", "0"]) == 0
    resumed = _summary(capsys.readouterr().out)
    assert resumed["generations"] == "1" and resumed["stopped"] == "completed"
