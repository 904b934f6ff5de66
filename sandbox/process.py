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
import socket
import subprocess
import tempfile
import time
import weakref
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from bilevel.mechanisms.contract import HOOK_NAMES
from bilevel.sandbox.channel import KEY_BYTES, Verifier
from bilevel.sandbox.outcome import Outcome, SandboxError, WorkerStartError

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


# --------------------------------------------------------------------------- values from a worker
MAX_VALUE_DEPTH = 80


def clean(text: str, limit: int) -> str:
    """Worker-supplied text as valid UTF-8 of bounded length."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def sound_value(value: Any, depth: int) -> bool:
    """Whether a parsed value is JSON data the host can store: bounded depth, valid Unicode text."""
    if depth > MAX_VALUE_DEPTH:
        return False
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(sound_value(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(sound_value(k, depth + 1) and sound_value(v, depth + 1) for k, v in value.items())
    return value is None or isinstance(value, (bool, int, float))


class _NotSimple(Exception):
    """Raised by :func:`_simple_copy` where the JSON round trip must decide."""


_SIMPLE_DEPTH = 6
_SIMPLE_INT = 1 << 62


def _simple_copy(value: Any, depth: int) -> Any:
    """What ``json.loads(json.dumps(value))`` returns, for the values where that is plain to see: exact
    str, float, bool and None (themselves), ints of less than 63 bits, and dicts with str keys and lists
    and tuples (copied as dicts and lists) of those, a few levels deep. Anything else raises
    :class:`_NotSimple` and goes the JSON way (other key types, subclasses, big ints, cycles, objects)."""
    kind = type(value)
    if kind is float or kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if -_SIMPLE_INT < value < _SIMPLE_INT:
            return value
        raise _NotSimple
    if depth:
        if kind is dict:
            out = {}
            for key, item in value.items():
                if type(key) is not str:
                    raise _NotSimple
                out[key] = _simple_copy(item, depth - 1)
            return out
        if kind is list or kind is tuple:
            return [_simple_copy(item, depth - 1) for item in value]
    raise _NotSimple


def plain_json(value: Any, what: str) -> Any:
    """A plain-data copy of ``value`` (host-side input check): ``json.loads(json.dumps(value))``, made
    directly for the plain values the inner loop sends (:func:`_simple_copy`), else by the round trip."""
    try:
        return _simple_copy(value, _SIMPLE_DEPTH)
    except _NotSimple:
        pass
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise SandboxError(f"{what} is not JSON data: {exc}") from exc


_DECODER = json.JSONDecoder()


# --------------------------------------------------------------------------- fork server
class ReadFailure(StrEnum):
    """Why no protocol line came back."""

    TIMEOUT = "timeout"
    EOF = "eof"
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    FORGED = "unauthenticated line"


def _reap_server(proc: subprocess.Popen[bytes], sock: socket.socket) -> None:
    """Kill the fork server's process group (its workers die with it), wait for it, close its socket."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)
    with contextlib.suppress(OSError):
        sock.close()


class ForkServer:
    """The pre-imported parent of a session's workers (``sandbox.worker.main``).

    Started once per session, lazily; :meth:`fork` gives a fresh worker for each inner run (or
    restart) in a few milliseconds instead of a new interpreter. :meth:`close` kills it.
    """

    def __init__(self, command: list[str]) -> None:
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                command, stdin=theirs.fileno(), stdout=theirs.fileno(), stderr=subprocess.DEVNULL,
                env=dict(WORKER_ENV), cwd=tempfile.gettempdir(), start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            self.sock.close()
            raise WorkerStartError(f"cannot start the sandbox fork server: {exc}") from exc
        finally:
            theirs.close()
        self._finalizer = weakref.finalize(self, _reap_server, self.proc, self.sock)
        self.buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self._finalizer.alive and self.proc.poll() is None

    def close(self) -> None:
        """Kill the server and with it every worker it forked; idempotent."""
        self._finalizer()

    def request(self, obj: dict[str, Any], deadline: float) -> tuple[dict[str, Any] | None, list[int]]:
        """Send one request; the reply (None if the server is gone or late) and the fds it carried."""
        fds: list[int] = []
        try:
            self.sock.sendall(json.dumps(obj).encode() + b"\n")
            while b"\n" not in self.buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                    raise TimeoutError
                data, got, _, _ = socket.recv_fds(self.sock, 1 << 16, 4)
                fds += got
                if not data:
                    raise EOFError
                self.buf += data
        except (OSError, EOFError):
            self._close_fds(fds)
            self.close()
            return None, []
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        return (reply if isinstance(reply, dict) else None), fds

    @staticmethod
    def _close_fds(fds: list[int]) -> None:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def fork(self, limits: Limits, sources: list[tuple[str, str]] | None = None) -> WorkerProcess:
        """A fresh, hardened worker for one inner run; ``sources``: the (source, file name) of each mechanism
        it will load, which the server compiles once and its workers inherit (``sandbox.worker``)."""
        key = os.urandom(KEY_BYTES)
        tmpdir = tempfile.mkdtemp(prefix="bilevel-sandbox-")
        os.chmod(tmpdir, 0o711)
        request = {"op": "fork", "limits": limits.to_json(), "key": key.hex(), "cwd": tmpdir,
                   **({"compile": sources} if sources else {})}
        reply, fds = self.request(request, time.monotonic() + STARTUP_TIMEOUT_S)
        pid = reply.get("forked") if reply else None
        if not isinstance(pid, int) or len(fds) != 2:
            self._close_fds(fds)
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise WorkerStartError(f"the sandbox fork server did not fork a worker ({reply!r})")
        return WorkerProcess(self, pid, fds[0], fds[1], key, tmpdir, limits)

    def kill_worker(self, pid: int) -> int | None:
        """SIGKILL a worker and have the server reap it; its exit status (None if unknown)."""
        if not self.alive():
            return None
        reply, fds = self.request({"op": "kill", "pid": pid}, time.monotonic() + STARTUP_TIMEOUT_S)
        self._close_fds(fds)
        code = reply.get("returncode") if reply else None
        return code if isinstance(code, int) else None


# --------------------------------------------------------------------------- worker process
def _reap(server: ForkServer, pid: int, fds: tuple[int, int], tmpdir: str, status: list[int | None]) -> None:
    """Close the pipes, have the server kill and reap the worker, remove its directory."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    status[0] = server.kill_worker(pid)
    shutil.rmtree(tmpdir, ignore_errors=True)


class WorkerProcess:
    """One forked worker and its pipes, as the host sees it. Created by :meth:`ForkServer.fork`."""

    def __init__(self, server: ForkServer, pid: int, to_worker: int, from_worker: int, key: bytes,
                 tmpdir: str, limits: Limits) -> None:
        self.server = server
        self.pid = pid
        self.tmpdir = tmpdir
        self.to_worker = to_worker
        self.from_worker = from_worker
        self._status: list[int | None] = [None]
        self._finalizer = weakref.finalize(self, _reap, server, pid, (to_worker, from_worker), tmpdir,
                                           self._status)
        self._verifier = Verifier(key)
        self.buf = bytearray()
        self.max_line = limits.max_value_bytes + LINE_OVERHEAD_BYTES
        self.layers: tuple[str, ...] = ()
        self.cpu_s = 0.0
        self.last_live: str | None = None  # the mechanism whose code ran last in this worker
        self._handshake()

    def _handshake(self) -> None:
        ready = self.read(time.monotonic() + STARTUP_TIMEOUT_S)
        if isinstance(ready, ReadFailure) or ready.get("ready") is not True:
            self.kill()
            raise WorkerStartError(f"the sandbox worker did not start ({ready!r}, exit status {self.returncode})")
        layers = ready.get("layers")
        if isinstance(layers, list) and all(isinstance(x, str) for x in layers):
            self.layers = tuple(layers)

    def send(self, obj: dict[str, Any]) -> bool:
        """Write one request line; False if the worker is gone."""
        data = (json.dumps(obj, allow_nan=True, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.to_worker, view):]
        except OSError:
            return False
        return True

    def read(self, deadline: float) -> dict[str, Any] | ReadFailure:
        """The next protocol line as a dict, or why there is none by ``deadline``."""
        if not self._finalizer.alive:
            return ReadFailure.EOF
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
            ready, _, _ = select.select([self.from_worker], [], [], remaining)
            if not ready:
                return ReadFailure.TIMEOUT
            try:
                chunk = os.read(self.from_worker, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                return ReadFailure.EOF
            self.buf += chunk

    def _parse(self, line: bytes) -> dict[str, Any] | ReadFailure:
        if len(line) > self.max_line:
            return ReadFailure.OVERSIZED
        body = self._verifier.open(line)
        if body is None:
            return ReadFailure.FORGED
        try:  # json.loads(body), whose encoding detection finds utf-8 for every line that starts '{"'
            obj = _DECODER.decode(body.decode("utf-8", "surrogatepass")) if body[:2] == b'{"' else json.loads(body)
        except (ValueError, RecursionError):
            return ReadFailure.MALFORMED
        return obj if isinstance(obj, dict) else ReadFailure.MALFORMED

    def alive(self) -> bool:
        """Whether the worker still holds its end of the pipe (checked without reading)."""
        if not self._finalizer.alive or not self.server.alive():
            return False
        poller = select.poll()
        poller.register(self.from_worker, select.POLLHUP | select.POLLERR)
        return not any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, ev in poller.poll(0))

    def kill(self) -> None:
        """Kill the worker and have it reaped; idempotent."""
        self._finalizer()

    @property
    def returncode(self) -> int | None:
        """The exit status once killed (negative: the signal), as ``subprocess`` reports it."""
        return self._status[0]


MESSAGE_CAP = 4_000
TRACEBACK_CAP = 40_000


def exit_outcome(event: dict[str, Any] | ReadFailure, mech_id: str, load: bool) -> Outcome | None:
    """The outcome in a well-formed exit line for ``mech_id`` (of a ``load`` when ``load``), else None."""
    if isinstance(event, ReadFailure) or event.get("exit") != mech_id:
        return None
    data = event.get("outcome")
    if not isinstance(data, dict):
        return None
    try:
        outcome = Outcome.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None
    if not sound_value(outcome.value, 0):
        return None
    message, traceback = clean(outcome.message, MESSAGE_CAP), clean(outcome.traceback, TRACEBACK_CAP)
    if message != outcome.message or traceback != outcome.traceback:  # usually both empty: nothing to replace
        outcome = dataclasses.replace(outcome, message=message, traceback=traceback)
    if load and outcome.ok:
        hooks = outcome.value.get("hooks") if isinstance(outcome.value, dict) else None
        if not isinstance(hooks, list) or not hooks or not set(hooks) <= set(HOOK_NAMES):
            return None
    return outcome
