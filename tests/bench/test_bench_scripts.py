"""The bench scripts run end to end at a tiny size and print the ratios they promise (no timing asserted)."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
TINY = Path(__file__).parent.parent / "data" / "tiny.toml"


@pytest.fixture
def bench() -> Iterator[Any]:
    sys.path.insert(0, str(BENCH))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


def _run(module: ModuleType, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert module.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("# "), out[:200]
    assert "# command: " in out
    return out


def _number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in:\n{text}"
    return float(m.group(1))


def test_mechanism_overhead_prints_a_ratio(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(bench("mechanism_overhead"), ["--trials", "12", "--repeats", "1", "--dimension", "2"], capsys)
    assert _number(r"ratio \(3 mechanisms / none\): ([\d.]+)x", out) > 0
    assert _number(r"hook calls/trial:\s+([\d.]+)", out) >= 3  # every mechanism observes every trial
    # the floor: three mechanisms that do nothing load and are called (guide, review, observe each trial)
    assert _number(r"3 do-nothing mechanisms:\s+[\d.]+ ms/trial, ratio ([\d.]+)x", out) > 0
    assert _number(r"3 do-nothing mechanisms, counterfactual off:.*hook calls/trial ([\d.]+)", out) == 9


def test_inner_vs_optuna_prints_rates(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(bench("inner_vs_optuna"), ["--trials", "8", "--repeats", "1", "--dimension", "2"], capsys)
    assert _number(r"optuna TPE study\s+\d+\s+([\d.]+)x", out) == 1.0
    assert _number(r"inner loop, greedy \+ 3 mechanisms\s+\d+\s+([\d.]+)x", out) > 0


@pytest.mark.slow
def test_parallel_panel_checks_scores_on_every_executor(bench: Any, ray_local: Any,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(bench("parallel_panel"), ["--entries", "4"], capsys)
    assert "scores identical on every executor: yes" in out
    for name in ("serial (inprocess)", "process pool, 2 workers", "ray, 2 CPUs"):
        assert name in out


def test_profile_names_the_sandbox_wait(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(bench("profile_inner"), ["--runs", "1", "--trials", "10", "--top", "5"], capsys)
    assert "waiting on the sandbox worker" in out and "top 5 by cumulative" in out


@pytest.mark.slow
def test_meta_result_scores_every_method_on_an_unseen_split(bench: Any, capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    mod = bench("meta_result")
    out = _run(mod, ["--spec", str(TINY), "--generations", "1", "--max-functions", "2",
                     "--seeds-per-instance", "1", "--instances-per-problem", "1", "--workers", "1", "--out", str(tmp_path / "t.md"),
                     "--coco", str(tmp_path / "coco")], capsys)
    table = (tmp_path / "t.md").read_text().splitlines()
    table = table[:table.index("")]  # the method table; the run's own figures follow
    assert [r.split(" | ")[0].lstrip("| ") for r in table[2:] if r.startswith("| ")] == [
        "kept stack", "baseline inner loop", "random search", "optuna TPE", "optuna CMA-ES"]
    assert "unit: group" in out  # intervals resampled by BBOB function
    coco = sorted(p.name for p in (tmp_path / "coco").iterdir())  # --coco: one COCO folder per method
    others = ["baseline-inner-loop", "optuna-CMA-ES", "optuna-TPE", "random-search"]
    kept_nothing = "is an evaluated method's stack (nothing kept)" in out
    assert coco == sorted(others + ([] if kept_nothing else ["kept-stack-seed-0"]))
    assert all(list((tmp_path / "coco" / c).glob("*.info")) for c in coco)
    split = re.search(r"functions \[(.*?)\], dimensions \[(.*?)\], instance ids \[(.*?)\]", out)
    assert split, out
    functions = [int(f) for f in split.group(1).split(",")]
    assert functions == [2, 3] and not {1, 8} & set(functions)  # tiny.toml's run saw f1 and f8 only
    assert split.group(2) == "3, 10" and int(split.group(3)) >= 10  # its dimension 2 and ids 1-9 excluded


@pytest.mark.slow
def test_meta_result_outer_seeds_scores_each_kept_stack_and_pools_by_seed(
        bench: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import json

    mod = bench("meta_result")
    out = _run(mod, ["--spec", str(TINY), "--generations", "1", "--max-functions", "2", "--outer-seeds", "2",
                     "--seeds-per-instance", "1", "--instances-per-problem", "1", "--workers", "1", "--split", "group",
                     "--json", str(tmp_path / "m.json")], capsys)
    data = json.loads((tmp_path / "m.json").read_text())
    methods = ["kept stack", "baseline inner loop", "random search", "optuna TPE", "optuna CMA-ES"]
    assert list(data["scores"]) == methods  # today's form: seed 0's kept stack and the four others
    assert len(data["pairs"]) == len(data["scores"]["optuna TPE"]) and data["pairs"][0].startswith("bbob-f2-d3-")
    seeds = data["seeds"]
    assert [s["seed"] for s in seeds] == [0, 1] and seeds[0]["salt"] != seeds[1]["salt"]
    assert seeds[0]["scores"] == data["scores"]["kept stack"]
    for s in seeds:
        base = data["scores"]["baseline inner loop"]
        diffs = [b - k for b, k in zip(base, s["scores"], strict=True)]
        assert abs(s["vs"]["baseline inner loop"]["mean"] - sum(diffs) / len(diffs)) < 1e-9
        assert s["vs"]["baseline inner loop"]["unit"] == "group"
        assert s["transfers"] == (s["vs"]["baseline inner loop"]["low"] > 0)
    pooled = data["study"]["pooled"]["optuna TPE"]
    assert pooled["seeds_used"] <= 2 and pooled["low"] <= pooled["mean"] <= pooled["high"]
    assert "study over 2 outer seeds" in out and "runs that kept something:" in out
    for s in seeds:  # --split group reached each run; its own summary figures are kept with it
        assert s["split"] == "group" and s["run_summary"]["stack"].endswith(s["kept"].split(" | ")[-1])
        assert s["run_summary"]["test_pairs"] == 4 and s["run_summary"]["val_ci_unit"] in ("group", "instance")
        assert str(s["run_summary"]["kept"]) == str(s["kept_count"])
    assert "each outer run on its own panels" in out


@pytest.mark.slow
def test_llm_cost_prints_both_arms_from_their_ledgers(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(bench("llm_cost"), ["--generations", "1", "--spec", str(TINY)], capsys)
    rows = {tuple(cells[1:3]): cells for line in out.splitlines() if line.startswith("| before") or
            line.startswith("| after") for cells in [[c.strip() for c in line.split("|")]]}
    before_calls = int(rows[("before", "inner")][3].replace(",", ""))
    after_calls = int(rows[("after", "inner")][3].replace(",", ""))
    assert before_calls > after_calls > 0  # 1 proposal per call against 8
    assert int(rows[("before", "author")][6].replace(",", "")) == 0  # no cache before
    assert int(rows[("after", "author")][6].replace(",", "")) > 0  # the author's prompt cached after
    assert _number(r"ratio before/after, inner: calls ([\d.]+)x", out) == pytest.approx(before_calls / after_calls,
                                                                                          abs=0.01)
    assert "estimate (anthropic:claude-sonnet-4-5" in out
