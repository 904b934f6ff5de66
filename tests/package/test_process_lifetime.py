"""Nothing outlives its host (issue 11): SIGKILL a run or a ``sandbox-check`` and none of its processes
(pool workers, the multiprocessing resource tracker, the sandbox's fork server and workers) is left 10 s later."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"
GRACE_S = 10.0

# A mechanism whose worker is busy when its host dies: nobody is left to enforce the call timeout.
SPIN = "def propose(ctx, state):\n    while True:\n        pass\n"


def _table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            out[int(entry.name)] = (int(fields[1]), cmd)
    return out


def _descendants(roots: set[int]) -> dict[int, str]:
    table = _table()
    found = {pid: table[pid][1] for pid in roots if pid in table}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, cmd) in table.items():
            if ppid in found and pid not in found:
                found[pid] = cmd
                grew = True
    return found


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[dict[int, str]], bool], what: str) -> dict[int, str]:
    """SIGKILL ``proc`` once its process tree satisfies ``ready``; return every process of the tree seen."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        tree = _descendants({proc.pid})
        seen.update(tree)
        if ready(tree):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"{what} never reached the state to kill it in (tree seen: {seen})")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return seen


def _left_after_grace(seen: dict[int, str]) -> dict[int, str]:
    """The processes of ``seen`` (and their children, as they appear) still alive after the grace period."""
    alive = {pid for pid in seen if pid in _table()}
    deadline = time.monotonic() + GRACE_S
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        tree = _descendants(alive)
        seen.update(tree)
        alive = set(tree)
    return {pid: seen[pid] for pid in alive}


def _is_sandbox_worker(tree: dict[int, str]) -> bool:
    """A forked sandbox worker: a process running the worker module whose parent runs it too."""
    table = _table()
    return any("bilevel.sandbox.worker" in cmd and "bilevel.sandbox.worker" in table.get(table[pid][0], (0, ""))[1]
               for pid, cmd in tree.items() if pid in table)


@pytest.mark.slow
def test_a_run_killed_with_sigkill_leaves_no_process(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bilevel.runs.cli", "run", "--spec", str(SPEC), "--store",
                             str(tmp_path / "store"), "--workers", "2", "--executor", "process"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)

    def ready(tree: dict[int, str]) -> bool:
        pool = [cmd for cmd in tree.values() if "multiprocessing" in cmd and "spawn_main" in cmd]
        tracker = [cmd for cmd in tree.values() if "resource_tracker" in cmd]
        return len(pool) >= 2 and bool(tracker) and _is_sandbox_worker(tree)

    seen = _kill_when(proc, ready, "the run")
    assert any("resource_tracker" in cmd for cmd in seen.values()), seen
    assert _left_after_grace(seen) == {}


def test_a_sandbox_check_killed_with_sigkill_leaves_no_process(tmp_path: Path) -> None:
    mech = tmp_path / "spin.py"
    mech.write_text(SPIN)
    proc = subprocess.Popen([sys.executable, "-m", "bilevel.runs.cli", "sandbox-check", str(mech), "--examples", "500"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    seen = _kill_when(proc, _is_sandbox_worker, "sandbox-check")
    assert sum("bilevel.sandbox.worker" in cmd for cmd in seen.values()) >= 2, seen  # fork server and a worker
    assert _left_after_grace(seen) == {}
