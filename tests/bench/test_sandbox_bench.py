"""``bench/sandbox_cost.py`` runs end to end at a tiny size and prints what it promises (no timing asserted)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_sandbox_cost_prints_call_costs_startup_and_layers(capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        module = importlib.import_module("sandbox_cost")
        assert module.main(["--calls", "5", "--starts", "1", "--runs", "2"]) == 0
    finally:
        sys.path.remove(str(BENCH))
    out = capsys.readouterr().out
    assert out.startswith("# sandbox cost")
    for row in ("trivial propose", "elite_crossover"):
        m = re.search(rf"{row}.*?([\d.]+) us\s+([\d.]+) us\s+([\d.]+) us\s+([\d.]+)x", out)
        assert m, out
        assert all(float(x) > 0 for x in m.groups())
    assert re.search(r"worker start-up .*: median \d+ ms over 1", out), out
    per_run = re.search(r"per inner run, 2 mechanisms: clean worker .* median ([\d.]+) ms; reuse of one worker "
                        r".* median ([\d.]+) ms; ratio ([\d.]+)x over 2; one trivial hook round trip (\d+) us", out)
    assert per_run and all(float(x) > 0 for x in per_run.groups()), out
    layers = re.search(r"active layers: (.*)", out)
    assert layers and {"policy", "rlimit", "audit", "timeout"} <= set(layers.group(1).split(", "))
