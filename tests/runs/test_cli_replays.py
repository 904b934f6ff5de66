"""Replays are marked (issue 13): `show` says "replay of RUN", `runs` lists them as replays, and a stack id
that both hold resolves to the original."""

from __future__ import annotations

from pathlib import Path

import pytest

from bilevel.runs.cli import main
from bilevel.runs.compare import find_lineage_run
from bilevel.runs.store import Store

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"


def test_a_replay_is_marked_and_stack_ids_mean_the_original(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--spec", str(SPEC), "--store", str(tmp_path), "--executor", "inprocess"]) == 0
    original = Store.in_dir(tmp_path).run_ids()[-1]
    assert main(["replay", original, "--store", str(tmp_path)]) == 0
    store = Store.in_dir(tmp_path)
    replay = store.run_ids()[-1]
    assert replay != original
    capsys.readouterr()
    assert main(["runs", "--store", str(tmp_path)]) == 0
    rows = {r.split("\t")[0]: r.split("\t")[2] for r in capsys.readouterr().out.splitlines()[1:]}
    assert rows[replay].endswith(f"replay of {original}") and "replay" not in rows[original]
    assert main(["show", replay, "--store", str(tmp_path)]) == 0
    assert f"replay of {original}" in capsys.readouterr().out.splitlines()[1]
    key = store.candidates(original)[0]["stack_key"][:8]
    assert any(c["stack_key"].startswith(key) for c in store.candidates(replay))  # both hold it
    assert find_lineage_run(store, [], key) == original
