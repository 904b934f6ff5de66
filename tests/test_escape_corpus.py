"""The escape corpus: every file in tests/corpus/escapes/ runs through the sandbox.

Each file is a mechanism whose first line is ``# expect: <status>``. The whole
corpus is loaded as one stack into a single session (as an inner run would),
then each mechanism's hooks are called in contract order until the first
fault; that fault's status (or ``ok``) must match the expectation. Faults that
kill the worker (timeouts) exercise the restart-and-replay path on the way.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Limits, SandboxSession, Status

CORPUS = Path(__file__).parent / "corpus" / "escapes"
MARKER_GLOB = "/tmp/bilevel-escape-*"
SPACE = {"params": [
    {"name": "x", "type": "float", "low": 0.0, "high": 1.0, "log": False},
    {"name": "c", "type": "categorical", "choices": ["a", "b"]},
]}
CANDIDATE = {"x": 0.5, "c": "a"}
# A smaller address space than the default keeps the memory cases quick: touching memory costs
# about 3 s per GiB on these machines, and the worker starts at about 140 MB.
LIMITS = Limits(call_timeout_s=1.5, memory_bytes=320 << 20)


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.py"))


def expectation(path: Path) -> Status:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect:"), f"{path.name}: first line must be '# expect: <status>'"
    return Status(first.split(":", 1)[1].strip())


def first_fault(session: SandboxSession, mech_id: str) -> Status | None:
    """Call guide, propose and review (those defined) until one faults."""
    for hook in ("guide", "propose", "review"):
        if hook in session.hooks(mech_id) and mech_id in session.active:
            candidate = CANDIDATE if hook == "review" else None
            out = session.call(mech_id, hook, 0, {}, candidate)
            if not out.ok:
                return out.status
    return None


@pytest.fixture(scope="module")
def observed() -> Iterator[dict[str, Status]]:
    """Run the whole corpus once; map each file name to the first non-OK status (or OK)."""
    for marker in glob.glob(MARKER_GLOB):
        os.remove(marker)
    files = corpus_files()
    mechanisms = [(path.name, path.read_text()) for path in files]
    statuses: dict[str, Status] = {}
    with SandboxSession(mechanisms, SPACE, seed=5, budget=4, limits=LIMITS) as session:
        for mid, out in session.start().items():
            if not out.ok:
                statuses[mid] = out.status
        for mid in session.active:
            fault = first_fault(session, mid)
            if fault is not None:
                statuses[mid] = fault
        trial = {"index": 0, "config": CANDIDATE, "score": 1.0, "kept": True, "source": "test"}
        for mid, out in session.observe(trial).items():
            if not out.ok:
                statuses.setdefault(mid, out.status)
    yield {path.name: statuses.get(path.name, Status.OK) for path in files}


def test_the_corpus_is_big_enough() -> None:
    assert len(corpus_files()) >= 20


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.stem)
def test_escape_case(path: Path, observed: dict[str, Status]) -> None:
    assert observed[path.name] is expectation(path)


def test_no_file_was_created_outside_the_worker(observed: dict[str, Status]) -> None:
    assert observed
    assert glob.glob(MARKER_GLOB) == []
    assert not list(Path.cwd().glob("bilevel-escape-*"))
