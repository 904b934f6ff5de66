"""Helpers shared by the bench scripts (run them as ``.venv/bin/python bench/NAME.py``).

Every script measures its subject and its baseline in the same process, in
the same command, and prints ratios: absolute times on a shared 2-core
machine drift, ratios measured side by side drift much less.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from bilevel.judge.stack import Mechanism, Stack  # noqa: E402
from bilevel.mechanisms.library import load_source  # noqa: E402


def builtin_stack(names: tuple[str, ...], search: Any = None) -> Stack:
    """A stack of built-in mechanisms (and the default search config unless ``search`` is given)."""
    mechs = tuple(Mechanism(n, load_source(n)) for n in names)
    return Stack(mechs) if search is None else Stack(mechs, search)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call of ``fn``."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """The median of ``repeats`` timings of ``fn``."""
    return statistics.median(timed(fn)[0] for _ in range(repeats))


def header(title: str) -> None:
    """The first lines of every bench: what, where, which command."""
    print(f"# {title}")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"# machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{_cpus()} CPUs, load average {_load()} at start")
    sys.stdout.flush()


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _load() -> str:
    import os

    return " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def progress(text: str) -> None:
    """A progress line on stderr (long benches show where they are)."""
    print(f"  .. {text}", file=sys.stderr, flush=True)
