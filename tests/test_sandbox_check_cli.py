"""``bilevel sandbox-check FILE --json``: one JSON object with the status, the layer, the message and timings."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus" / "escapes"


def sandbox_check_json(path: Path) -> tuple[int, dict[str, object]]:
    from bilevel.runs.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["sandbox-check", str(path), "--json", "--examples", "2"])
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()
    return rc, json.loads(lines[0])


@pytest.mark.parametrize(("case", "status", "layer", "words"), [
    ("benign_tabu.py", "ok", "", "passed"),
    ("open_write.py", "policy_violation", "policy", "'open'"),
    ("import_os.py", "policy_violation", "policy", "module 'os'"),
    ("cpu_loop.py", "timeout", "timeout", "call timeout"),
    ("memory_string.py", "memory", "rlimit", "MemoryError"),
    ("return_set.py", "contract_violation", "host", "not plain data"),
])
def test_the_report_names_status_layer_message_and_timings(case: str, status: str, layer: str, words: str) -> None:
    rc, report = sandbox_check_json(CORPUS / case)
    assert rc == (0 if status == "ok" else 1)
    assert report["status"] == status and report["layer"] == layer, report
    assert words in str(report["message"]), report
    timings = report["timings"]
    assert isinstance(timings, dict) and timings["compile_s"] >= 0 and "calls" in timings
    assert isinstance(report["elapsed_s"], float)
    if case != "open_write.py":  # refused on the host, before any worker starts
        assert {"policy", "rlimit", "audit", "timeout"} <= set(report["layers"])  # type: ignore[arg-type]
        assert timings["startup_s"] > 0
