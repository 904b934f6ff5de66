"""The worker process as the host sees it: its limits, how it is started, its pipes.

:class:`WorkerProcess` starts one worker (``sandbox.worker``) with an
environment built from scratch, a fresh temporary directory and a new
session, performs the ``init`` handshake, and reads size-bounded protocol
lines with a deadline. :meth:`WorkerProcess.kill` kills its process group and
reaps it. Used by ``sandbox.session``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from bilevel.sandbox.outcome import WorkerStartError

# The folder that holds the ``bilevel`` package (site-packages, or the checkout for an editable install).
ROOT = str(Path(__file__).parent.parent.parent)
STARTUP_TIMEOUT_S = 30.0
LINE_OVERHEAD_BYTES = 512 * 1024
WORKER_ENV = {
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
}


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox session and its worker."""

    call_timeout_s: float = 2.0       # wall clock per call
    run_timeout_s: float = 120.0      # total wall clock of all calls of one mechanism in one session
    cpu_s: int = 600                  # RLIMIT_CPU of the worker
    memory_bytes: int = 1 << 30       # RLIMIT_AS
    file_size_bytes: int = 0
    open_files: int = 64
    max_value_bytes: int = 1_000_000
    max_faults: int = 3               # a mechanism is disabled after this many CRASH/CONTRACT faults

    def __post_init__(self) -> None:
        if self.call_timeout_s <= 0 or self.run_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.cpu_s < 1 or self.memory_bytes < 1 << 26 or self.open_files < 8:
            raise ValueError("cpu_s >= 1, memory_bytes >= 64 MiB and open_files >= 8 are required")
        if self.file_size_bytes < 0 or self.max_value_bytes < 1024 or self.max_faults < 1:
            raise ValueError("file_size_bytes >= 0, max_value_bytes >= 1024 and max_faults >= 1 are required")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def worker_command(root: str = ROOT) -> list[str]:
    """The command line of a worker process."""
    code = f"import sys; sys.path.insert(0, {root!r}); from bilevel.sandbox.worker import main; main()"
    return [sys.executable, "-s", "-P", "-c", code]


# --------------------------------------------------------------------------- worker process
class ReadFailure(StrEnum):
    """Why no protocol line came back."""

    TIMEOUT = "timeout"
    EOF = "eof"
    MALFORMED = "malformed"
    OVERSIZED = "oversized"


def _reap(proc: subprocess.Popen[bytes], tmpdir: str) -> None:
    """Kill the worker's process group, wait for it, close its pipes, remove its directory."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    shutil.rmtree(tmpdir, ignore_errors=True)


class WorkerProcess:
    """One worker process and its pipes. Created by a session; :meth:`kill` reaps it."""

    def __init__(self, limits: Limits, command: list[str]) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="bilevel-sandbox-")
        try:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=dict(WORKER_ENV), cwd=self.tmpdir, start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            raise WorkerStartError(f"cannot start the sandbox worker: {exc}") from exc
        self._finalizer = weakref.finalize(self, _reap, self.proc, self.tmpdir)
        self.buf = bytearray()
        self.max_line = limits.max_value_bytes + LINE_OVERHEAD_BYTES
        self.layers: tuple[str, ...] = ()
        self.cpu_s = 0.0
        self.killed_by_host = False
        self._handshake(limits)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _handshake(self, limits: Limits) -> None:
        sent = self.send({"op": "init", "limits": limits.to_json()})
        ready = self.read(time.monotonic() + STARTUP_TIMEOUT_S) if sent else ReadFailure.EOF
        if isinstance(ready, ReadFailure) or ready.get("ready") is not True:
            self.kill()
            raise WorkerStartError(f"the sandbox worker did not start ({ready!r}, exit status {self.proc.returncode})")
        layers = ready.get("layers")
        if isinstance(layers, list) and all(isinstance(x, str) for x in layers):
            self.layers = tuple(layers)

    def send(self, obj: dict[str, Any]) -> bool:
        """Write one request line; False if the worker is gone."""
        data = (json.dumps(obj, allow_nan=True, separators=(",", ":")) + "\n").encode()
        stdin = self.proc.stdin
        if stdin is None:
            return False
        try:
            stdin.write(data)
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def read(self, deadline: float) -> dict[str, Any] | ReadFailure:
        """The next protocol line as a dict, or why there is none by ``deadline``."""
        stdout = self.proc.stdout
        if stdout is None:
            return ReadFailure.EOF
        fd = stdout.fileno()
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                return self._parse(line)
            if len(self.buf) > self.max_line:
                return ReadFailure.OVERSIZED
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ReadFailure.TIMEOUT
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return ReadFailure.TIMEOUT
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return ReadFailure.EOF
            self.buf += chunk

    def _parse(self, line: bytes) -> dict[str, Any] | ReadFailure:
        if len(line) > self.max_line:
            return ReadFailure.OVERSIZED
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            return ReadFailure.MALFORMED
        return obj if isinstance(obj, dict) else ReadFailure.MALFORMED

    def alive(self) -> bool:
        """Whether the process is still running (without reaping it)."""
        if self.proc.returncode is not None:
            return False
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False

    def kill(self) -> None:
        """Kill the process group and reap it; idempotent."""
        self._finalizer()

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


