"""``bilevel ablate``: groups and controls with repeats, one table paired against group A."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bilevel.runs.ablate import GROUPS, repeat_spec
from bilevel.runs.cli import main
from bilevel.runs.spec import load_spec
from bilevel.runs.store import Store

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"


def test_repeats_get_their_own_seed_and_panels() -> None:
    base = load_spec(SPEC)
    r0, r1 = repeat_spec(base, 0), repeat_spec(base, 1)
    assert r1["run"]["seed"] == r0["run"]["seed"] + 1
    assert r0["panels"]["salt"] != r1["panels"]["salt"]
    assert [g.name for g in GROUPS] == ["A", "B", "C", "D", "restart", "sham", "offline"]


def test_unknown_group_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ablate", "--spec", str(SPEC), "--groups", "B,Z", "--store", str(tmp_path)]) == 2
    assert "unknown groups ['Z']" in capsys.readouterr().err


@pytest.mark.slow
def test_ablation_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ablate", "--spec", str(SPEC), "--repeats", "2", "--groups", "B,C,sham,offline", "--store", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    table = out.split("--- ablation ---", 1)[1].splitlines()
    rows = {line.split()[0]: line for line in table[2:] if line and line.split()[0] in {"A", "B", "sham", "offline"}}
    assert set(rows) == {"A", "B", "sham", "offline"}
    c_row = next(line for line in table[2:] if line.startswith("C "))
    assert c_row.split()[-7:] == rows["offline"].split()[-7:]  # the offline control is C here
    assert rows["A"].split()[-7:-4] == ["+0.0000", "+0.0000", "+0.0000"]  # A against itself: mean, CI
    n_pairs = 2 * 4  # two repeats of a 4-pair test panel
    for name in ("A", "B", "sham"):
        assert re.search(rf"\s2\s+{n_pairs}\s", rows[name]), rows[name]
    assert re.search(r"\s(0?\.\d+|1)\s", rows["sham"])  # a sign-flip p against A, across the 2 repeats
    assert re.search(r"^power: ", out, re.M)  # what the study can and cannot detect
    assert "= C (offline study)" in out
    store = Store.in_dir(tmp_path)
    groups = [store.events(r, "ablation")[0]["group"] for r in store.run_ids()]
    assert sorted(groups) == ["B", "B", "C", "C"]  # offline (= C) and the fixed stacks need no run
    for r in store.run_ids():
        if store.events(r, "ablation")[0]["group"] == "B":
            assert {c["author"] for c in store.candidates(r)} <= {"level1.5"}  # B: no Level 2 author
    assert re.search(r"^wall_s: \d", out, re.M)
