"""What came out of one mechanism call, as data: plain values, tracebacks, outcomes.

Used by the worker (``sandbox.hooks``) after each call: :func:`judge` turns
what a hook returned or raised, and the violations it recorded, into an
:class:`Outcome`; :func:`to_plain` checks a returned value is plain JSON data.
"""

from __future__ import annotations

import linecache
import os
import sys
import traceback
from typing import Any

import numpy as np

from bilevel.sandbox import policy
from bilevel.sandbox.outcome import Outcome, Status
from bilevel.sandbox.plaincopy import compact_json

TRACEBACK_CAP = 20_000
MESSAGE_CAP = 2_000
MAX_DEPTH = 64
MAX_INT_BITS = 256
#: Frames of these files (the worker's own call machinery) are cut from the head of a traceback.
OWN_FILES = frozenset({os.path.join(os.path.dirname(__file__), "hooks.py")})

# --------------------------------------------------------------------------- plain values
class NotPlain(Exception):
    """A returned value is not plain JSON data; the message says where and why."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        where = f" at value{self.path}" if self.path else ""
        return f"{self.reason}{where}"


def _plain(v: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise NotPlain("returned value has too many elements")
    if depth > MAX_DEPTH:
        raise NotPlain(f"returned value is nested deeper than {MAX_DEPTH}")
    t = type(v)
    if t is str:
        return _text(v)
    if v is None or t is bool or t is float:
        return v
    if t is int:
        if v.bit_length() > MAX_INT_BITS:
            raise NotPlain(f"integer with more than {MAX_INT_BITS} bits")
        return v
    if t is dict:
        return _plain_dict(v, depth, budget)
    if t is list or t is tuple:
        return _plain_list(v, depth, budget)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return _plain(int(v), depth, budget)
    if isinstance(v, np.floating):
        return float(v)
    hint = " (use .tolist())" if isinstance(v, np.ndarray) else ""
    raise NotPlain(f"a {t.__name__} is not plain data (dict with str keys, list, str, int, float, bool, None){hint}")


def _text(v: str) -> str:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise NotPlain("a string that is not valid Unicode text (lone surrogate)") from None
    return v


def _plain_dict(v: dict[Any, Any], depth: int, budget: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, x in v.items():
        if type(k) is not str:
            raise NotPlain(f"dict key {type(k).__name__} {str(k)[:40]!r} is not a str")
        _text(k)
        try:
            out[k] = _plain(x, depth + 1, budget)
        except NotPlain as exc:
            raise NotPlain(exc.reason, f"[{k[:40]!r}]{exc.path}") from None
    return out


def _plain_list(v: list[Any] | tuple[Any, ...], depth: int, budget: list[int]) -> list[Any]:
    out: list[Any] = []
    for i, x in enumerate(v):
        try:
            out.append(_plain(x, depth + 1, budget))
        except NotPlain as exc:
            raise NotPlain(exc.reason, f"[{i}]{exc.path}") from None
    return out


def to_plain(value: Any, max_bytes: int) -> Any:
    """``value`` as plain JSON data (tuples become lists, numpy scalars Python numbers), or NotPlain."""
    plain = _plain(value, 0, [max_bytes // 2 + 16])
    size = len(compact_json(plain))
    if size > max_bytes:
        raise NotPlain(f"returned value is {size} bytes of JSON; the limit is {max_bytes}")
    return plain


# --------------------------------------------------------------------------- outcomes
def cap(text: str, limit: int) -> str:
    """``text`` as valid UTF-8, cut to about ``limit`` characters, keeping its head and (mostly) its tail."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    return f"{text[:head]}\n... [{len(text) - limit} characters cut] ...\n{text[-tail:]}"


def describe_exception(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = ""
    name = type(exc).__name__
    return cap(f"{name}: {text}" if text else name, MESSAGE_CAP)


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without the worker's own frame, capped."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename in OWN_FILES:
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:  # noqa: BLE001 - a source line the worker may not read (the audit hook refuses open)
        policy.take_violations()
        text = _bare_traceback(exc, tb)
    return cap(text, TRACEBACK_CAP)


def _bare_traceback(exc: BaseException, tb: Any) -> str:
    """A traceback with file, line and function of each frame but no source lines."""
    try:
        frames = traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)
        lines = ["Traceback (most recent call last):\n"]
        lines += [f'  File "{f.filename}", line {f.lineno}, in {f.name}\n' for f in frames]
        return "".join(lines) + describe_exception(exc) + "\n"
    except Exception as inner:  # noqa: BLE001
        return f"(traceback unavailable: {type(inner).__name__})"


def cache_own_sources() -> None:
    """Read the sources of the sandbox and mechanisms packages into ``linecache`` before hardening,
    so that tracebacks through the guards show their lines without opening files later."""
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.split(".")[0] in ("sandbox", "mechanisms") and isinstance(path, str):
            linecache.getlines(path)


def fault_outcome(exc: BaseException, elapsed: float) -> Outcome:
    """Map an exception raised by mechanism code to an outcome."""
    tb = format_traceback(exc)
    message = describe_exception(exc)
    if isinstance(exc, policy.PolicyViolation):
        return Outcome(Status.POLICY_VIOLATION, message=message, traceback=tb, elapsed_s=elapsed, layer=exc.layer)
    if isinstance(exc, MemoryError):
        return Outcome(Status.MEMORY, message=message, traceback=tb, elapsed_s=elapsed, layer="rlimit")
    return Outcome(Status.CRASH, message=message, traceback=tb, elapsed_s=elapsed)


def judge(value: Any, exc: BaseException | None, elapsed: float, check: bool, max_bytes: int) -> Outcome:
    """The outcome of one call, from what it returned or raised and the violations it recorded."""
    violations = policy.take_violations()
    if violations:
        first = violations[0]
        tb = format_traceback(exc) if exc is not None else ""
        return Outcome(Status.POLICY_VIOLATION, message=cap(first.message, MESSAGE_CAP), traceback=tb,
                       elapsed_s=elapsed, layer=first.layer)
    if exc is not None:
        return fault_outcome(exc, elapsed)
    if not check:
        return Outcome(Status.OK, elapsed_s=elapsed)
    try:
        return Outcome(Status.OK, value=to_plain(value, max_bytes), elapsed_s=elapsed)
    except NotPlain as problem:
        return Outcome(Status.CONTRACT_VIOLATION, message=cap(str(problem), MESSAGE_CAP), elapsed_s=elapsed,
                       layer="host")
    except (RecursionError, MemoryError, ValueError, TypeError) as problem:
        return Outcome(Status.CONTRACT_VIOLATION, message=describe_exception(problem), elapsed_s=elapsed,
                       layer="host")


