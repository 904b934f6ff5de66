"""Research workflows end to end: two small runs, then lineage, compare, report, replay, export and import."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from pathlib import Path

import pytest

from bilevel.runs.cli import main
from bilevel.runs.compare import subject, warnings
from bilevel.runs.recipe import RecipeError, import_recipe
from bilevel.runs.store import Store

SPEC = Path(__file__).parent.parent / "data" / "workflows.toml"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Two runs of the same small spec with different outer seeds (the first keeps a mechanism)."""
    store = tmp_path_factory.mktemp("wf")
    ids = []
    for seed in ("1", "2"):
        assert main(["run", "--spec", str(SPEC), "--store", str(store), "--seed", seed]) == 0
        ids.append(Store.in_dir(store).run_ids()[-1])
    return store, ids[0], ids[1]


def _out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 0, argv
    return capsys.readouterr().out


def test_lineage_tree_and_diff(two_runs: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    store, run_a, _ = two_runs
    capsys.readouterr()
    out = _out(capsys, ["lineage", run_a, "--store", str(store)])
    s = Store.in_dir(store)
    verdicts = s.verdicts(run_a)
    assert out.splitlines()[1].startswith("baseline [")
    kept = [v for v in verdicts if v["keep"]]
    assert kept, "the workflows spec is meant to keep a stack"
    assert re.search(r"\[[0-9a-f]{8}\] g\d+ KEPT by offline: ", out)
    for v in verdicts:  # every verdict's reason and its numbers are in the tree
        assert v["reason"] in out
    assert f"mean {kept[0]['mean_improvement']:+.4f} CI [{kept[0]['ci_low']:+.4f}" in out
    key = re.search(r"\[([0-9a-f]{8})\] g\d+ KEPT", out).group(1)  # type: ignore[union-attr]
    diff = _out(capsys, ["lineage", run_a, "--store", str(store), "--diff", key])
    assert diff.startswith(f"stack [{key}]")
    assert "parent [" in diff and ("+++ b/" in diff)
    added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert len(added) > 5  # real source lines of the new mechanism (or a config change)
    assert main(["lineage", run_a, "--store", str(store), "--diff", "ffffffffff"]) == 2


def test_compare_runs_and_lineage(two_runs: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    store, run_a, run_b = two_runs
    capsys.readouterr()
    out = _out(capsys, ["compare", run_a, run_b, "--store", str(store)])
    summary_a = {e["run"]: e for e in Store.in_dir(store).events(run_a, "run_end")}[run_a]
    row_a = next(line for line in out.splitlines() if line.startswith(run_a + "\t"))
    cells = row_a.split("\t")
    assert cells[3] == summary_a["test_improvement"]  # the same number the run's summary printed
    assert f"[{cells[4]}, {cells[5]}]" == summary_a["test_ci"]
    assert cells[7] == "n/a" and cells[10] == "0"  # offline: no tokens, no gain per token
    assert float(cells[9]) != 0.0 and int(cells[12]) > 0  # gain per 1000 trials from the trial count
    assert any(line.startswith(run_b + "\t") for line in out.splitlines())
    assert re.search(rf"  {run_a}: g0: [+-]\d\.\d{{4}} \[", out)  # per-generation curves
    assert "rsi_acceptance_rate" in out and "rsi_gain_per_ktoken: n/a" in out
    key = Store.in_dir(store).verdicts(run_b)[0]["stack_key"][:8]
    lin = _out(capsys, ["compare", "--lineage", key, run_b, "--store", str(store)])
    assert f"{run_b}:{key}" in lin


def test_compare_warns_on_different_judges(two_runs: tuple[Path, str, str]) -> None:
    store, run_a, run_b = two_runs
    s = Store.in_dir(store)
    a, b = subject(s, run_a), subject(s, run_b)
    assert not any("different benchmarks" in w for w in warnings([a, b]))
    assert any("different judges" in w for w in warnings([a, b])) == (a.manifest_hash != b.manifest_hash)
    other = dataclasses.replace(b, manifest_hash="0" * 64, benchmark="datamix-lm")
    text = "\n".join(warnings([a, other]))
    assert "different judges" in text and "different benchmarks" in text


def test_report_is_self_contained(two_runs: tuple[Path, str, str], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    store, run_a, _ = two_runs
    out = tmp_path / "r.html"
    _out(capsys, ["report", run_a, "--store", str(store), "--out", str(out), "--transfer", "bbob",
                  "--transfer-options", '{"functions": [3], "dimensions": [2]}', "--transfer-instances", "1"])
    html = out.read_text()
    assert "<h2 id='transfer'>Transfer to bbob</h2>" in html  # the final stack on an unseen function
    for plot in ("best-so-far", "generation-gains", "lineage-tree", "val-test-gap"):
        m = re.search(rf'<img class="plot" id="plot-{plot}" alt="{plot}" src="data:image/png;base64,([^"]+)"', html)
        assert m and len(m.group(1)) > 2000, plot
    assert "http://" not in html and "https://" not in html  # no server, no network
    assert "Cost ledger" in html and "offline author: no model calls" in html
    assert "Validation vs test gap" in html and "rsi_gain_per_generation" in html
    assert Store.in_dir(store).verdicts(run_a)[0]["reason"][:30] in html


def test_replay_stack_on_new_pairs(two_runs: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    store, run_a, _ = two_runs
    capsys.readouterr()
    out = _out(capsys, ["replay", run_a, "--stack", "--store", str(store), "--instances", "2", "--seeds", "7", "9",
                        "--json"])
    data = json.loads(out)
    assert len(data["pairs"]) == 4
    assert {p[0].split("@")[1] for p in data["pairs"]} == {"7", "9"}
    gains = [b - s for _, b, s in data["pairs"]]
    assert data["mean"] == pytest.approx(sum(gains) / 4)
    assert data["ci_low"] <= data["mean"] <= data["ci_high"]
    panels = Store.in_dir(store).run(run_a).manifest["panels"]
    seen = {e["instance"] for name in ("search", "validation", "test") for e in panels[name]}
    replayed = {p[0].split("@")[0] for p in data["pairs"]}
    assert replayed and not replayed & seen, "a replay on N instances must prefer instances the run never used"
    assert len({k.split("-")[1] for k in replayed}) == 2, "instances are spread over the benchmark's groups"


def test_export_import_round_trip(two_runs: tuple[Path, str, str], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    store, run_a, _ = two_runs
    recipe, sampler, tsv = tmp_path / "run.recipe.json.gz", tmp_path / "stack.json", tmp_path / "results.tsv"
    out = _out(capsys, ["export", run_a, "--store", str(store), "--out", str(tsv), "--recipe", str(recipe),
                        "--sampler", str(sampler)])
    assert "bilevel import" in out and "StackSampler.load" in out
    assert tsv.read_text().count("\n") == 1 + len(Store.in_dir(store).verdicts(run_a))
    other = tmp_path / "other-store"
    imported = _out(capsys, ["import", str(recipe), "--store", str(other)])
    assert f"run: {run_a}" in imported and "judge matches" in imported
    new, old = Store.in_dir(other), Store.in_dir(store)
    for table in ("candidates", "verdicts", "mechanisms", "events"):
        assert new.count(table, run_a) == old.count(table, run_a)
    n_evals = new.count("evaluations", run_a)
    shown = _out(capsys, ["show", run_a, "--store", str(other)])
    assert "rsi_acceptance_rate" in shown and "lineage:" in shown
    cmp_new = _out(capsys, ["compare", run_a, "--store", str(other)]).splitlines()[1]
    cmp_old = _out(capsys, ["compare", run_a, "--store", str(store)]).splitlines()[1]
    assert cmp_new == cmp_old
    assert new.count("evaluations", run_a) == n_evals  # the recipe brought the evaluations: nothing recomputed
    replayed = _out(capsys, ["replay", run_a, "--stack", "--store", str(other), "--instances", "1", "--seeds", "3"])
    assert "pairs: 1" in replayed
    with pytest.raises(RecipeError, match="already in"):
        import_recipe(new, recipe)
    run2, _ = import_recipe(new, recipe, "copy-of-a")
    assert new.verdicts(run2) == new.verdicts(run_a)
    data = json.loads(gzip.decompress(recipe.read_bytes()))
    data["sources"][0][1] += "\n# tampered\n"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(RecipeError, match="does not match its hash"):
        import_recipe(new, bad, "bad")
    stack_file = json.loads(sampler.read_text())
    assert stack_file["format"] == "bilevel-sampler" and stack_file["stack"]["mechanisms"]
