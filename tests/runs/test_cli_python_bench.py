"""bench/python_benchmark.py runs at a tiny size and prints both paths and their ratio (no timing asserted)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_python_benchmark_bench_prints_both_paths(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import python_benchmark

    assert python_benchmark.main(["--trials", "20", "--baseline-trials", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# python benchmark") and "# command: " in out
    assert re.search(r"persistent child: first trial .* then median [\d.]+ ms per trial", out)
    assert re.search(r"child per trial \(before\): median [\d.]+ ms per trial over 2 trials", out)
    assert re.search(r"overhead ratio \(before / persistent\): \d+x", out)
    sys.modules.pop("python_benchmark", None)
