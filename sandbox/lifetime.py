"""Process lifetime: nothing bilevel starts outlives the process that started it.

Every child process bilevel starts (the sandbox's fork server and its
workers, the pool workers of ``outer.executors``, benchmark children) asks the
kernel for a parent-death signal (``PR_SET_PDEATHSIG``, SIGKILL): when its
parent dies, however it dies (SIGKILL included), the child is killed too, and
so on down the tree. The multiprocessing resource tracker then sees its last
writer gone and exits by itself. ``tests/package/test_process_lifetime.py`` kills a run
and a ``sandbox-check`` with SIGKILL and finds none of their processes left.

Linux only; elsewhere these functions do nothing and say so (False). It may
import nothing from bilevel.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


# Resolved once, in the parent: a ``preexec_fn`` then only calls it (no loading between fork and exec).
_PRCTL = _load_prctl()


def die_with_parent(parent: int | None = None) -> bool:
    """Ask to be SIGKILLed when the parent dies; exit now if ``parent`` (default: the current parent) is gone.

    Called first thing in a child (and again after a uid change, which clears the setting).
    """
    expected = os.getppid() if parent is None else parent
    ok = _PRCTL is not None and _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != expected:
        os._exit(1)
    return ok


def pool_initializer(parent: int) -> None:
    """``initializer`` of a process pool: its workers die with the process that made the pool."""
    die_with_parent(parent)


def preexec_die_with_parent(parent: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess``: the child (and the program it executes) dies with us."""
    expected = os.getpid() if parent is None else parent

    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != expected:
            os._exit(1)

    return preexec
