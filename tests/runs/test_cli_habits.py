"""CLI habits: --version, the store from BILEVEL_STORE, read-only commands, hints, signals, typos, `runs`."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bilevel
from bilevel.runs.cli import main

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"
ROOT = Path(__file__).resolve().parents[2]


def _evaluations(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(str(db), timeout=5) as c:
            return int(c.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of ``pid``, or None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[2]))


def _descendants_or_group(root: int) -> list[int]:
    """Live processes whose process group is ``root`` or whose parent chain reaches ``root``."""
    table = {int(e.name): _stat(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit()}
    out = []
    for pid, st in table.items():
        if st is None or pid == root:
            continue
        if st[1] == root:
            out.append(pid)
            continue
        parent, seen = st[0], 0
        while parent > 1 and seen < 64:
            if parent == root:
                out.append(pid)
                break
            nxt = table.get(parent)
            parent, seen = (nxt[0] if nxt else 0), seen + 1
    return out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"bilevel {bilevel.__version__}"


@pytest.mark.parametrize("argv", [["show", "r1"], ["runs"], ["export", "r1"], ["lineage", "r1"],
                                  ["compare", "r1"], ["report", "r1"], ["replay", "r1"], ["resume", "r1"]])
def test_read_only_commands_never_create_a_store(tmp_path: Path, argv: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    where = tmp_path / "nothing-here"
    assert main([*argv, "--store", str(where)]) == 2
    err = capsys.readouterr().err
    assert str(where / "bilevel.sqlite") in err and "--store DIR" in err and "BILEVEL_STORE" in err
    assert not where.exists()


def test_bilevel_store_env_is_the_default_and_the_flag_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    env_store, flag_store = tmp_path / "env", tmp_path / "flag"
    monkeypatch.setenv("BILEVEL_STORE", str(env_store))
    assert main(["run", "--spec", str(SPEC)]) == 0
    run_id = capsys.readouterr().out.splitlines()[0].split(": ", 1)[1]
    assert (env_store / "bilevel.sqlite").is_file()
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["id", "date", "status", "benchmark", "author", "kept", "failed_trials"]
    cells = lines[1].split("\t")
    assert cells[0] == run_id and cells[2].startswith("finished") and cells[3] == "bbob" and len(cells) == 7
    assert cells[6].startswith("0/")
    assert main(["runs", "--store", str(flag_store)]) == 2  # the flag beats the environment
    assert "flag" in capsys.readouterr().err


def test_misspelled_flag_gets_usage_and_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["show", "r1", "--stroe", "x"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "usage: bilevel show" in captured.err and "did you mean --store?" in captured.err


def test_sigterm_stops_cleanly_resumes_and_leaves_no_process(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "bilevel.runs.cli", "run", "--spec", str(SPEC),
                             "--store", str(store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().split(": ", 1)[1].strip()
    deadline = time.monotonic() + 120
    while _evaluations(store / "bilevel.sqlite") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130  # what Ctrl-C gives
    assert f"bilevel resume {run_id} --store {store}" in err
    time.sleep(5)
    assert _descendants_or_group(proc.pid) == []
    assert main(["resume", run_id, "--store", str(store)]) == 0
    assert "--- summary ---" in capsys.readouterr().out
