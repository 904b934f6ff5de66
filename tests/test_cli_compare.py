"""compare (issue 13): the paired difference per test pair between runs that share a judge and panels, with a
cluster interval; warnings on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest

from bilevel.judge.stats import hierarchical_bootstrap_ci
from bilevel.runs.cli import main
from bilevel.runs.history import load_history
from bilevel.runs.store import Store

SPEC = Path(__file__).parent / "data" / "tiny.toml"


def test_compare_prints_the_paired_difference_between_runs(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    ids = []
    for seed in ("3", "4"):
        assert main(["run", "--spec", str(SPEC), "--store", str(tmp_path), "--seed", seed, "--candidates", "3",
                     "--executor", "inprocess"]) == 0
        ids.append(Store.in_dir(tmp_path).run_ids()[-1])
    capsys.readouterr()
    assert main(["compare", *ids, "--store", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "WARNING" not in out and "WARNING" not in err  # the same judge: nothing to warn about
    lines = out.splitlines()
    head = lines.index("first\tsecond\tdifference\tci_low\tci_high\tci_unit\tpairs")
    first, second, diff, low, high, unit, pairs = lines[head + 1].split("\t")
    assert (first, second, pairs) == (ids[0], ids[1], "4")
    store = Store.in_dir(tmp_path)
    scores = []
    for run_id in ids:
        final = load_history(store, run_id).final.key
        test = store.run(run_id).manifest["panels"]["test"]
        by_pair = {(e["instance"], e["seed"]): e["result"]["primary"] for e in store.evaluations(run_id)
                   if e["stack_key"] == final}
        scores.append([by_pair[(t["instance"], t["seed"])] for t in test])
    test = store.run(ids[0]).manifest["panels"]["test"]
    ci = hierarchical_bootstrap_ci([a - b for a, b in zip(*scores, strict=True)], [t["group"] for t in test],
                                   [t["instance"] for t in test], 0.95, 200, seed=0)
    assert float(diff) == pytest.approx(ci.mean, abs=1e-4) and unit == ci.unit
    assert float(low) == pytest.approx(ci.low, abs=1e-4) and float(high) == pytest.approx(ci.high, abs=1e-4)
