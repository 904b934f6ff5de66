"""What the command line prints: text with control characters escaped, and strict JSON.

Mechanism messages, tracebacks and lineage notes come from untrusted code (or
an LLM). Printed raw, an escape sequence in them would reach the terminal: it
could clear the screen, retitle the window, or rewrite earlier lines (``\\r``,
cursor moves) so that a refused mechanism reads as passed. So the CLI's text
output goes through :func:`printable` (one helper, used by every line ``show``
and ``sandbox-check`` print): control characters other than newline and tab,
Unicode format characters (bidirectional overrides, zero-width characters),
line and paragraph separators and lone surrogates are written as ``\\xNN`` /
``\\uNNNN``; each line after the first is indented two spaces, so a message
cannot start a line that looks like a field of the report.

``--json`` output is strict JSON (:func:`strict_json`): ``NaN`` and the
infinities, which Python's ``json`` writes as bare ``NaN``/``Infinity`` tokens
that strict parsers refuse, are written as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``; every non-ASCII and control character is
a ``\\uNNNN`` escape.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

#: Control characters printed as they are.
KEPT = frozenset("\n\t")
#: Unicode categories written as escapes: controls, format characters, separators, surrogates.
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
CONTINUATION = "  "
NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _escape(ch: str) -> str:
    if ch in KEPT or unicodedata.category(ch) not in ESCAPED_CATEGORIES:
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: Any) -> str:
    """``text`` (any value, as ``str``) safe to print on a terminal; see the module doc."""
    escaped = "".join(_escape(ch) for ch in str(text))
    return escaped.replace("\n", "\n" + CONTINUATION)


def say(text: Any = "") -> None:
    """Print one (escaped) line of text output; called for every line ``show`` and ``sandbox-check`` print."""
    print(printable(text))


def _finite(value: Any) -> Any:
    """``value`` with NaN and the infinities (at any depth) replaced by their names as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return NON_FINITE[repr(value)]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def strict_json(value: Any, **kwargs: Any) -> str:
    """``value`` as strict JSON text (``allow_nan=False``, ASCII only); NaN/inf become strings."""
    return json.dumps(_finite(value), allow_nan=False, ensure_ascii=True, **kwargs)
