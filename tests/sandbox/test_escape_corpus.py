"""The escape corpus: every file in tests/corpus/escapes/ runs through the sandbox.

Each file is a mechanism whose first line is ``# expect: <status>`` and, for a
fault, a ``# message: <text>`` line: the text the outcome's message must
contain (it names what was refused). The whole corpus is loaded as one stack
into a single session (as an inner run would), then each mechanism's hooks are
called in contract order until the first fault (an OK proposal or review
is checked against the space as the inner loop checks it); that fault's status
and message must match. Faults that kill the worker (timeouts, memory kills)
exercise the restart-and-replay path on the way, and the benign cases must
still answer at the end: the host run carries on. Afterwards no marker file
exists, and no worker process or temporary directory is left behind.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bilevel.inner.space import Space, SpaceError
from bilevel.sandbox import Limits, Outcome, SandboxSession, Status

CORPUS = Path(__file__).parent.parent / "corpus" / "escapes"
MARKER_GLOB = "/tmp/bilevel-escape-*"
SPACE = {"params": [
    {"name": "x", "type": "float", "low": 0.0, "high": 1.0, "log": False},
    {"name": "c", "type": "categorical", "choices": ["a", "b"]},
    {"name": "n", "type": "int", "low": 1, "high": 8, "log": False},
    {"name": "k", "type": "categorical", "choices": [1, "b"]},
    {"name": "mix", "type": "simplex", "domains": ["a", "b"]},
]}
CANDIDATE = {"x": 0.5, "c": "a", "n": 6, "k": 1, "mix": {"a": 0.5, "b": 0.5}}
# A smaller address space than the default keeps the memory cases quick: touching memory costs
# about 3 s per GiB on these machines, and the worker starts at about 140 MB. The call timeout is
# generous for the cases that must pass under load, and only the timeout cases wait for it.
LIMITS = Limits(call_timeout_s=3.0, memory_bytes=320 << 20)
BENIGN = ("benign_tabu.py", "ctx_mutation.py", "print_flood.py")


@dataclass(frozen=True)
class Case:
    """One corpus file: its source and what it must end with."""

    path: Path
    status: Status
    message: str

    @classmethod
    def read(cls, path: Path) -> Case:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines and lines[0].startswith("# expect:"), f"{path.name}: line 1 must be '# expect: <status>'"
        status = Status(lines[0].split(":", 1)[1].strip())
        header = [line for line in lines if line.startswith("#")]
        messages = [line.split(":", 1)[1].strip() for line in header if line.startswith("# message:")]
        assert status is Status.OK or messages, f"{path.name}: a fault case needs a '# message: <text>' line"
        return cls(path, status, messages[0] if messages else "")


@dataclass(frozen=True)
class Observed:
    """What the corpus run saw: each case's first fault (or OK), the worker pids, the benign re-check."""

    outcomes: dict[str, Outcome]
    workers: frozenset[tuple[int, str]]
    after: dict[str, Outcome]


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.py"))


def note_worker(session: SandboxSession, workers: set[tuple[int, str]]) -> None:
    """Remember the current worker's pid and directory (to check later that both are gone)."""
    if session.worker_pid is not None and session.worker_dir is not None:
        workers.add((session.worker_pid, session.worker_dir))


def host_check(session: SandboxSession, mech_id: str, hook: str, out: Outcome) -> Outcome:
    """The inner loop's check of an OK proposal or review: None, a rejection string or a valid config.

    An invalid config is a contract fault the host counts (``note_fault``), as ``inner.loop`` does;
    the check itself must never raise anything but SpaceError (no traceback on the host).
    """
    value = out.value
    if not out.ok or hook == "guide" or value is None or (hook == "review" and isinstance(value, str)):
        return out
    try:
        Space.from_json(SPACE).validate(value)
    except SpaceError as exc:
        session.note_fault(mech_id, f"{hook}: {exc}")
        return Outcome(Status.CONTRACT_VIOLATION, message=f"{hook}: {exc}", layer="host")
    return out


def first_fault(session: SandboxSession, mech_id: str, workers: set[tuple[int, str]]) -> Outcome | None:
    """Call guide, propose and review (those defined) until one faults or returns an invalid config."""
    for hook in ("guide", "propose", "review"):
        if hook in session.hooks(mech_id) and mech_id in session.active:
            candidate = CANDIDATE if hook == "review" else None
            out = host_check(session, mech_id, hook, session.call(mech_id, hook, 0, {}, candidate))
            note_worker(session, workers)
            if not out.ok:
                return out
    return None


@pytest.fixture(scope="module")
def observed() -> Iterator[Observed]:
    """Run the whole corpus once in one session; then call the benign cases again."""
    for marker in glob.glob(MARKER_GLOB):
        os.remove(marker)
    files = corpus_files()
    mechanisms = [(path.name, path.read_text(encoding="utf-8")) for path in files]
    outcomes: dict[str, Outcome] = {}
    workers: set[tuple[int, str]] = set()
    with SandboxSession(mechanisms, SPACE, seed=5, budget=4, limits=LIMITS) as session:
        for mid, out in session.start().items():
            if not out.ok:
                outcomes[mid] = out
        note_worker(session, workers)
        for mid in session.active:
            fault = first_fault(session, mid, workers)
            if fault is not None:
                outcomes[mid] = fault
        trial = {"index": 0, "config": CANDIDATE, "score": 1.0, "kept": True, "source": "test"}
        for mid, out in session.observe(trial).items():
            if not out.ok:
                outcomes.setdefault(mid, out)
        after = {mid: session.call(mid, "propose", 1, {}) for mid in BENIGN}
        note_worker(session, workers)
    yield Observed({p.name: outcomes.get(p.name, Outcome(Status.OK)) for p in files}, frozenset(workers), after)


def test_the_corpus_is_big_enough() -> None:
    assert len(corpus_files()) >= 60


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.stem)
def test_escape_case(path: Path, observed: Observed) -> None:
    case = Case.read(path)
    out = observed.outcomes[path.name]
    assert out.status is case.status, out
    assert case.message in out.message, f"{path.name}: the message must name what was refused: {out.message!r}"
    if case.status is not Status.OK:
        assert out.layer or out.status is Status.CRASH, f"{path.name}: a refusal names its layer: {out}"


def test_the_host_run_carries_on_after_every_fault(observed: Observed) -> None:
    for mid, out in observed.after.items():
        assert out.ok, (mid, out)
    assert len(observed.workers) > 1  # the timeouts killed workers, and new ones took over


def test_no_file_was_created_outside_the_worker(observed: Observed) -> None:
    assert observed.outcomes
    assert glob.glob(MARKER_GLOB) == []
    assert not list(Path.cwd().glob("bilevel-escape-*"))
    for _, directory in observed.workers:
        assert not os.path.exists(directory), f"{directory} was not removed with its worker"


def our_child(pid: int) -> bool:
    """Whether ``pid`` is (still) a child of this test process, running or not yet reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid()


def test_no_worker_process_is_left(observed: Observed) -> None:
    assert observed.workers
    for pid, _ in observed.workers:
        assert not our_child(pid), f"worker {pid} is still running or was not reaped"
