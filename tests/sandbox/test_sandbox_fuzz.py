"""Fuzzing ``bilevel sandbox-check``: random and mutated mechanism sources never hurt the host.

Hypothesis feeds the command (in-process, as ``bilevel sandbox-check FILE
--json``) two kinds of source: random text, and real mechanisms (the built-in
ones and corpus cases) mutated by deleting, duplicating and truncating lines
and by inserting hostile snippets (escapes, loops, bombs, floods). For every
source the command must print exactly one JSON object with a known status,
exit with 0 (passed) or 1 (failed), leave no worker process behind and create
no file outside the worker's directory. A hang would trip the watchdog.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proc_helpers import worker_children

from bilevel.sandbox import Status

ROOT = Path(__file__).resolve().parents[2]
SEEDS = sorted((ROOT / "mechanisms" / "builtin").glob("*.py")) + [
    Path(__file__).parent.parent / "corpus" / "escapes" / name
    for name in ("benign_tabu.py", "ctx_mutation.py", "print_flood.py", "return_huge.py", "memory_string.py")
]
SNIPPETS = (
    "import os", "import numpy as np", "x = ().__class__", "return 'a' * 10**10",
    "return open('/tmp/bilevel-escape-fuzz', 'w')", "np.save('/tmp/bilevel-escape-fuzz', 1)",
    "return list(range(10**6))", "raise SystemExit(0)", "return {1, 2}", "print('x' * 100000)",
    "return float('nan')", "yield 1", "def propose(ctx, state):", "return ctx['history']",
    "while True: pass", "state['s'] = state", "'{0.__class__}'.format(ctx)", "return propose(ctx, state)",
    "import gc", "_getattr_ = None", "return ctx", "return None", "try:\n    pass\nexcept* ValueError:\n    pass",
    "lambda _getiter_=None: 1", "sum(range(10**5))",
)
WATCHDOG_S = 300  # far beyond any single check (call timeouts bound each one): only a hang trips it
STATUSES = {s.value for s in Status}


class Hang(Exception):
    """The watchdog fired: the command did not return."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang(f"sandbox-check did not return within {WATCHDOG_S} s")


@contextlib.contextmanager
def watchdog() -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(WATCHDOG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)




@st.composite
def mutated_sources(draw: st.DrawFn) -> str:
    """A real mechanism with a few random edits."""
    lines = draw(st.sampled_from(SEEDS)).read_text(encoding="utf-8").splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["insert", "insert", "delete", "duplicate", "truncate"]))
        if edit == "insert":
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            snippet = draw(st.sampled_from(SNIPPETS))
            lines[i:i] = [indent + part for part in snippet.splitlines()]
        elif edit == "delete":
            del lines[i]
        elif edit == "duplicate":
            lines.insert(i, lines[i])
        else:
            cut = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:cut]
    return "\n".join(lines) + "\n"


SOURCES = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="def propose(ctx, state):\n return{}[]._'\"0123456789+*:=", max_size=200),
    mutated_sources(),
    mutated_sources(),
    mutated_sources(),
)


def sandbox_check(source: str) -> tuple[int, str]:
    """``bilevel sandbox-check FILE --json --examples 2`` in-process; (exit status, stdout)."""
    from bilevel.runs.cli import main

    with tempfile.TemporaryDirectory(prefix="bilevel-fuzz-") as tmp:
        path = Path(tmp) / "mechanism.py"
        path.write_text(source, encoding="utf-8", errors="surrogatepass")
        out = io.StringIO()
        with watchdog(), contextlib.redirect_stdout(out):
            rc = main(["sandbox-check", str(path), "--json", "--examples", "2"])
    return rc, out.getvalue()


@pytest.mark.slow
@settings(max_examples=30, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.nested_given])
@given(SOURCES)
def test_sandbox_check_survives_any_source(source: str) -> None:
    for marker in glob.glob("/tmp/bilevel-escape-fuzz*"):
        os.remove(marker)
    rc, stdout = sandbox_check(source)
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout[:2000]
    report = json.loads(lines[0])
    assert report["status"] in STATUSES, report
    assert rc == (0 if report["ok"] else 1), (rc, report)
    assert report["ok"] == (report["status"] == "ok")
    assert isinstance(report["message"], str) and report["message"]
    # Every refusal names its layer; a crash is the code failing by itself (its exception is the message).
    assert isinstance(report["layer"], str) and (report["status"] in ("ok", "crash") or report["layer"]), report
    assert set(report["timings"]) >= {"compile_s", "calls"}
    assert worker_children() == []
    assert glob.glob("/tmp/bilevel-escape-fuzz*") == []


def test_the_fuzzer_reaches_the_worker() -> None:
    """A mutated source that compiles still runs in real workers (the fuzz is not all syntax errors)."""
    rc, stdout = sandbox_check("import os\n" + SEEDS[0].read_text(encoding="utf-8"))
    report = json.loads(stdout)
    assert rc == 1 and report["status"] == "policy_violation" and "'os'" in report["message"]
    assert "audit" in report["layers"] and report["timings"]["startup_s"] > 0
    assert worker_children() == []
