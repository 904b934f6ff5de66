"""Every verdict names each new mechanism's counterfactual changed share and the one that decided (issue 10
item 1): a two-mechanism candidate whose one member is inert is rejected naming it, through ``bilevel judge``,
``show`` and ``lineage``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bilevel.mechanisms.library import load_source
from bilevel.runs.cli import main

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"
IDENTITY = "def guide(ctx, state):\n    return {'step_scale': 1.0}\n"  # fires every trial, changes nothing


def _block(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_an_inert_member_is_named_with_its_share(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "identity.py").write_text(IDENTITY, encoding="utf-8")
    (tmp_path / "trust_region.py").write_text(load_source("trust_region"), encoding="utf-8")
    # the whole validation panel (4 pairs) at once: no cascade stage, so the activity check decides
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.read_text().replace("stage1_pairs = 2", "stage1_pairs = 4"), encoding="utf-8")
    store = str(tmp_path / "s")
    assert main(["judge", str(tmp_path / "identity.py"), str(tmp_path / "trust_region.py"),
                 "--spec", str(spec), "--store", store]) == 0
    block = _block(capsys.readouterr().out.split("--- judge ---", 1)[1])
    reason = block["reason"]
    assert block["verdict"] == "rejected" and block["stage"] == "full"
    assert reason.startswith("rejected: new mechanism 'identity' never changed a proposal")
    shares = re.search(r"activation per new mechanism \(share of trials each changed, counterfactually\): "
                       r"identity (\d+\.\d)%, trust_region (\d+\.\d)%; the least active, identity, decides", reason)
    assert shares, reason
    assert shares.group(1) == "0.0" and float(shares.group(2)) > 0.0
    # the same share as the block's own per-mechanism count over the validation trials
    counted = re.match(r"activation (\d+\.\d)% of validation trials changed", block["mechanism trust_region"])
    assert counted and counted.group(1) == shares.group(2)
    run_id = block["run"]
    for command in ("show", "lineage"):
        assert main([command, run_id, "--store", store]) == 0
        out = capsys.readouterr().out
        assert f"identity 0.0%, trust_region {shares.group(2)}%; the least active, identity, decides" in out
