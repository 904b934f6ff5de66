"""``bilevel sandbox-check FILE --json``: one JSON object with the status, the layer, the message and timings."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent.parent / "corpus" / "escapes"


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


def strict_loads(text: str) -> object:
    """``json.loads`` that refuses the NaN/Infinity tokens strict JSON parsers refuse."""
    def refuse(token: str) -> object:
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(("case", "status", "words"), [
    ("simplex_weight_overflow.py", "contract_violation", "each weight must be a finite number in [0, 1]"),
    ("int_as_float.py", "contract_violation", "must be an integer (an int, not a float or a bool)"),
    ("numpy_datetime_now.py", "policy_violation", "datetime64/timedelta64 dtypes are not allowed"),
])
def test_strict_values_are_refused_without_a_traceback(case: str, status: str, words: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from bilevel.runs.cli import main

    rc = main(["sandbox-check", str(CORPUS / case), "--json"])  # the simplex needs a few random spaces
    captured = capsys.readouterr()
    report = strict_loads(captured.out)
    assert rc == 1 and isinstance(report, dict), captured
    assert report["status"] == status and words in str(report["message"]), report
    assert "Traceback" not in captured.err


def test_non_finite_values_are_strict_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bilevel.runs.cli import main

    source = tmp_path / "nan.py"
    source.write_text("def propose(ctx, state):\n"
                      "    return {p['name']: float('nan') for p in ctx['space']['params']}\n", encoding="utf-8")
    rc = main(["sandbox-check", str(source), "--json", "--examples", "1"])
    report = strict_loads(capsys.readouterr().out)
    assert rc == 1 and isinstance(report, dict)
    assert isinstance(report["example"], dict) and "NaN" in report["example"]["value"].values(), report


def test_text_output_escapes_terminal_control_sequences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bilevel.runs.cli import main

    source = tmp_path / "escapes.py"
    source.write_text('def propose(ctx, state):\n    raise ValueError("\\x1b]0;owned\\x07\\x1b[2J\\rstatus: ok\\u202e")\n',
                      encoding="utf-8")
    assert main(["sandbox-check", str(source), "--examples", "1"]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out and "\u202e" not in out
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x0dstatus: ok\\u202e" in out
    assert [line for line in out.splitlines() if line.startswith("status:")] == ["status: crash"]


def test_printable_and_strict_json() -> None:
    from bilevel.runs.terminal import printable, strict_json

    assert printable("a\x1b[31mb\tc\u200bd\U000e0001") == "a\\x1b[31mb\tc\\u200bd\\U000e0001"
    assert printable("first\nstatus: ok") == "first\n  status: ok"
    assert printable("ünïcode → fine") == "ünïcode → fine"
    text = strict_json({"a": [float("nan"), float("inf"), -float("inf"), 1.5], "b": "\x1b"}, sort_keys=True)
    assert text == '{"a": ["NaN", "Infinity", "-Infinity", 1.5], "b": "\\u001b"}'
    assert strict_loads(text)
