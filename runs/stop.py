"""A stop asked for by a signal, delivered even when the signal's exception is swallowed.

SIGTERM and SIGHUP stop a run like Ctrl-C: the handler raises KeyboardInterrupt in the main thread. Python
swallows an exception raised while it runs a garbage-collector callback or a finaliser (hypothesis, which
the conformance check imports, registers a gc callback), so a signal that lands there would be lost and the
run would go on to completion. The handler therefore also records the request, and the run checks it at
every progress callback (:func:`raise_if_stop_requested`), in the main thread, where raising is safe.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_REQUESTED: list[int] = []


def request_stop(signum: int, frame: Any) -> None:
    """The signal handler for SIGTERM and SIGHUP (installed by the command line): record, then interrupt."""
    _REQUESTED.append(signum)
    raise KeyboardInterrupt


def install() -> None:
    """Called once by ``bilevel``'s main before a command runs."""
    _REQUESTED.clear()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, request_stop)


def raise_if_stop_requested() -> None:
    """Called by the run's progress callbacks: raise the interrupt a swallowed signal could not deliver."""
    if _REQUESTED and threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt
