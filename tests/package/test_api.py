"""The Python API (issue 14): bilevel.run and bilevel.open_store, and the README example that uses them."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import sqlite3
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from user_specs import TINY as USER_TINY
from user_specs import TRAIN_SCRIPT

import bilevel
from bilevel.runs.spec import SpecError
from bilevel.runs.store import StoreError, UnknownRun

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.toml"
HAS_PANDAS = importlib.util.find_spec("pandas") is not None


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section should have exactly one python block"
    return blocks[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One tiny run through bilevel.run (a TOML path), shared by the read tests."""
    store = tmp_path_factory.mktemp("api") / "store"
    return store, bilevel.run(TINY, store=store)


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _readme_example()
    spec_text = code.split("summary =", 1)[0]
    namespace: dict[str, Any] = {}
    exec(spec_text, namespace)
    assert namespace["spec"] == tomllib.loads(TINY.read_text(encoding="utf-8")), "README spec drifted from tiny.toml"
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    run_id = lines[0].split()[0]
    assert run_id.startswith("bbob-")
    assert (tmp_path / "bilevel-runs" / "bilevel.sqlite").is_file()
    assert lines[-1].endswith("inner runs") and int(lines[-1].split()[0]) > 0
    assert len(lines) >= 3  # at least one verdict line between


def test_run_returns_the_cli_summary_as_plain_data(finished: tuple[Path, dict[str, Any]]) -> None:
    _, summary = finished
    assert summary["run_id"] == summary["run"]
    for key in ("benchmark", "author", "generations", "candidates", "kept", "stack", "val_improvement",
                "val_ci", "test_improvement", "test_pairs", "manifest", "stopped", "wall_s"):
        assert key in summary, key
    assert summary["stopped"] == "completed"
    assert summary["generations"] == 2
    assert all(isinstance(v, str | int | float) for v in summary.values())


def test_bad_spec_raises_spec_error_and_records_nothing(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="unknown key 'generation' in \\[run\\]"):
        bilevel.run({"run": {"generation": 2}}, store=tmp_path / "s")
    with pytest.raises(SpecError, match="must be an integer"):
        bilevel.run({"run": {"generations": "two"}}, store=tmp_path / "s")
    with pytest.raises(SpecError, match="dict .* or a path"):
        bilevel.run(42, store=tmp_path / "s")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="does not exist"):
        bilevel.run(tmp_path / "missing.toml", store=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_open_store_missing_path_names_it_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(StoreError, match=re.escape(str(missing))):
        bilevel.open_store(missing)
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StoreError, match="no run store"):
        bilevel.open_store(empty)
    assert list(empty.iterdir()) == []


def test_open_store_plain_data(finished: tuple[Path, dict[str, Any]]) -> None:
    path, summary = finished
    run_id = summary["run_id"]
    with bilevel.open_store(path) as store:
        runs = store.runs()
        assert [r["run_id"] for r in runs] == [run_id]
        assert runs[0]["finished"] is True and runs[0]["kept"] == summary["kept"]
        verdicts = store.verdicts(run_id)
        assert len(verdicts) == summary["candidates"]
        assert all(v["run_id"] == run_id and isinstance(v["keep"], bool) and v["reason"] for v in verdicts)
        assert store.verdicts() == verdicts
        trials = store.trials(run_id)
        assert trials and all(t["run_id"] == run_id and isinstance(t["primary"], float) for t in trials)
        assert {"stack_key", "instance", "seed", "n_trials"} <= set(trials[0])
        with pytest.raises(UnknownRun, match="no run 'nope'"):
            store.trials("nope")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # opened read-only
            store._store.db.execute("INSERT INTO sources VALUES ('x', 'y')")


def test_frames_without_pandas_say_how_to_install(finished: tuple[Path, dict[str, Any]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError, as when absent
    with bilevel.open_store(finished[0]) as store, pytest.raises(ImportError, match="pip install pandas"):
        store.verdicts_frame()


@pytest.mark.skipif(not HAS_PANDAS, reason="needs pandas")
def test_frames_with_pandas(finished: tuple[Path, dict[str, Any]]) -> None:
    with bilevel.open_store(finished[0]) as store:
        assert len(store.runs_frame()) == 1
        assert list(store.verdicts_frame()["keep"]) == [v["keep"] for v in store.verdicts()]
        assert len(store.trials_frame()) == len(store.trials())


def test_run_of_a_spec_file_works_in_its_folder_and_a_refused_run_creates_no_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bilevel.runs.preflight import PreflightError

    spec = tmp_path / "spec.toml"
    spec.write_text(USER_TINY.format(benchmark="command", options='command = "python train.py"'), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the command runs in the spec file's folder, as `bilevel run --spec` runs it
    with pytest.raises(PreflightError, match="pre-flight trial failed") as err:
        bilevel.run(spec, store=tmp_path / "refused")
    assert "can't open file" in str(err.value)  # train.py is not there yet
    assert not (tmp_path / "refused").exists(), "a refused run must leave no store behind"
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT, encoding="utf-8")
    summary = bilevel.run(spec, store=tmp_path / "store")
    assert summary["stopped"] == "completed" and summary["failed_trials"].startswith("0 of ")
