"""compare (issue 13): the paired difference per test pair between runs that share a judge and panels, with a
cluster interval; warnings on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest

from bilevel.judge.stats import hierarchical_bootstrap_ci
from bilevel.runs.cli import main
from bilevel.runs.history import load_history
from bilevel.runs.store import Store

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"


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
    finals = [load_history(store, r).final.key for r in ids]
    _check(store, list(zip(ids, finals, strict=True)), (diff, low, high, unit))
    # two stacks of one run's lineage: different stacks, so a difference that is not zero by construction
    keys = [c["stack_key"] for c in store.candidates(ids[0])][:2]
    assert main(["compare", "--lineage", f"{ids[0]}:{keys[0][:8]}", "--lineage", f"{ids[0]}:{keys[1][:8]}",
                 "--store", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = lines[lines.index("first\tsecond\tdifference\tci_low\tci_high\tci_unit\tpairs") + 1].split("\t")
    assert row[0].endswith(keys[0][:8]) and row[1].endswith(keys[1][:8])
    assert float(row[2]) != 0.0
    _check(Store.in_dir(tmp_path), [(ids[0], k) for k in keys], (row[2], row[3], row[4], row[5]))


def _check(store: Store, stacks: list[tuple[str, str]], printed: tuple[str, str, str, str]) -> None:
    """The printed difference and interval, recomputed from the stored test-panel runs of the two
    (run, stack key) subjects."""
    test = store.run(stacks[0][0]).manifest["panels"]["test"]
    scores = []
    for run_id, key in stacks:
        by_pair = {(e["instance"], e["seed"]): e["result"]["primary"] for e in store.evaluations(run_id)
                   if e["stack_key"] == key}
        scores.append([by_pair[(t["instance"], t["seed"])] for t in test])
    ci = hierarchical_bootstrap_ci([a - b for a, b in zip(*scores, strict=True)], [t["group"] for t in test],
                                   [t["instance"] for t in test], 0.95, 200, seed=0)
    diff, low, high, unit = printed
    assert float(diff) == pytest.approx(ci.mean, abs=1e-4) and unit == ci.unit
    assert float(low) == pytest.approx(ci.low, abs=1e-4) and float(high) == pytest.approx(ci.high, abs=1e-4)
