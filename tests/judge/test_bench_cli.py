"""``bilevel run --benchmark datamix-lm`` and ``hpo-tabular`` complete small runs and report regret."""

from __future__ import annotations

from pathlib import Path

import pytest

from bilevel.runs.cli import main
from bilevel.runs.store import Store

DATA = Path(__file__).parent.parent / "data"


def _summary(out: str) -> dict[str, str]:
    block = out.split("--- summary ---", 1)[1]
    return dict(line.split(": ", 1) for line in block.strip().splitlines())


@pytest.mark.slow
@pytest.mark.parametrize(("benchmark", "spec", "phrase"), [
    ("datamix-lm", "datamix_small.toml", "above the target's exact Bayes code length"),
    ("hpo-tabular", "tabular_small.toml", "0 = the exact optimum"),
])
def test_small_run_completes_and_reports_regret(benchmark: str, spec: str, phrase: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--benchmark", benchmark, "--spec", str(DATA / spec), "--store", str(tmp_path)]) == 0
    summary = _summary(capsys.readouterr().out)
    assert summary["benchmark"] == benchmark and summary["stopped"] == "completed"
    assert phrase in summary["score"]
    assert int(summary["val_pairs"]) >= 3
    store = Store.in_dir(tmp_path)
    manifest = store.run(summary["run"]).manifest
    assert benchmark in str(manifest)
    if benchmark == "hpo-tabular":
        assert "subscore_regression_caps" in str(manifest)
