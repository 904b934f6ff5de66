"""The ``python`` benchmark's long-lived child: one per (callable, pythonpath, workdir) per process.

The child (``pyrunner.py --serve``) imports the callable once; each trial is one
JSON line each way, so a trial costs well under a millisecond of overhead
instead of a process start. Faults are the same as a one-shot child's: a
trial over ``timeout_s`` kills the child (the next trial starts a fresh one),
a child that dies fails its trial with its exit status and stderr tail, an
exception in the callable fails only that trial (the child lives on). Every
fault is an ``ObjectiveError`` naming the problem. Children end with the
process that started them (``atexit``; they also watch their parent).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from bilevel.inner.objective import ObjectiveError
from bilevel.sandbox.lifetime import preexec_die_with_parent

RUNNER = Path(__file__).with_name("pyrunner.py")
STDERR_TAIL = 600


class PythonChild:
    """One running ``pyrunner.py --serve`` child. ``call`` is called once per trial."""

    def __init__(self, target: str, paths: tuple[str, ...], workdir: str | None) -> None:
        self.target, self.paths, self.workdir = target, paths, workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.err: IO[bytes] | None = None
        self.buffer = b""
        self.tmp: tempfile.TemporaryDirectory[str] | None = None

    def _start(self, timeout_s: float) -> None:
        self.err = tempfile.TemporaryFile(mode="a+b")
        if self.workdir is None and self.tmp is None:
            self.tmp = tempfile.TemporaryDirectory(prefix="bilevel-pychild-")
        cwd = self.workdir or (self.tmp.name if self.tmp else None)
        paths = [*self.paths, *([self.workdir] if self.workdir else [])]
        self.proc = subprocess.Popen([sys.executable, str(RUNNER), "--serve", self.target, *paths],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, cwd=cwd,
                                     preexec_fn=preexec_die_with_parent())  # dies with us (issue 11)
        self.buffer = b""
        hello = self._read(timeout_s, "loading the callable")
        if "error" in hello:
            self.stop()
            raise ObjectiveError(f"{hello['error']}\n{hello.get('traceback', '')}".strip())

    def call(self, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """One trial: the callable's result dict, or ObjectiveError (timeout, death, exception)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start(timeout_s)
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(payload, sort_keys=True).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # a dead child: the read below reports how it died
        reply = self._read(timeout_s, "the trial")
        if not reply.get("ok"):
            raise ObjectiveError(f"the callable {self.target} raised {reply.get('error')}\n"
                                 f"{reply.get('traceback', '')}".strip())
        result = reply.get("result")
        if not isinstance(result, dict):
            raise ObjectiveError(f"the callable's result must be a number or a dict, got {result!r}")
        self._clear_stderr()
        return result

    def _read(self, timeout_s: float, what: str) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise ObjectiveError(f"the python benchmark timed out after {timeout_s:g} s during {what} "
                                     f"(raise timeout_s, or make the trial cheaper): {self.target}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                code = self.proc.wait()
                tail = self._stderr_tail()
                self.stop()
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                raise ObjectiveError(f"the python benchmark's process {how} during {what}: {self.target}; "
                                     f"stderr: {tail or '(empty)'}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return dict(json.loads(line))

    def _stderr_tail(self) -> str:
        if self.err is None:
            return ""
        self.err.seek(0, os.SEEK_END)
        size = self.err.tell()
        self.err.seek(max(0, size - 4 * STDERR_TAIL))
        return self.err.read().decode("utf-8", "replace")[-STDERR_TAIL:].strip()

    def _clear_stderr(self) -> None:
        if self.err is not None:
            self.err.truncate(0)

    def stop(self) -> None:
        """Kill the child (called on a timeout, on its death, and at exit)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()
            self.proc = None
        if self.err is not None:
            self.err.close()
            self.err = None


_CHILDREN: dict[tuple[str, tuple[str, ...], str | None], PythonChild] = {}


def child_for(target: str, paths: tuple[str, ...], workdir: str | None) -> PythonChild:
    """The child of this process for the callable (started on its first trial)."""
    key = (target, paths, workdir)
    if key not in _CHILDREN:
        _CHILDREN[key] = PythonChild(target, paths, workdir)
    return _CHILDREN[key]


@atexit.register
def stop_all() -> None:
    """End every child of this process."""
    for child in _CHILDREN.values():
        child.stop()
