"""A live progress line on stderr: rewritten in place on a terminal, a line every few seconds elsewhere."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from bilevel.runs.stop import raise_if_stop_requested


class Progress:
    """Shows the current stage and evaluation counts. ``stage`` and ``evaluation`` are called by the run."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self.start = time.monotonic()
        self.last_print = 0.0
        self.stage_text = "starting"
        self.evals = 0
        self.failed = 0
        self.batch = ""
        self._width = 0

    def stage(self, text: str) -> None:
        raise_if_stop_requested()
        self.stage_text = text
        self.batch = ""  # the last stage's count would read as this stage's progress
        self._show(force=not self.tty)

    def evaluation(self, done: int, total: int) -> None:
        raise_if_stop_requested()
        self.evals += 1
        self.batch = f"{done}/{total}"
        self._show(force=False)

    def failures(self, n: int) -> None:
        """Called with the failed trials of each inner run that had some."""
        self.failed += n
        self._show(force=False)

    def _line(self) -> str:
        elapsed = time.monotonic() - self.start
        batch = f" [{self.batch}]" if self.batch else ""
        failed = f" | failed trials: {self.failed}" if self.failed else ""
        return f"[{elapsed:6.1f}s] {self.stage_text}{batch} | inner runs: {self.evals}{failed}"

    def _show(self, force: bool) -> None:
        now = time.monotonic()
        if not force and not self.tty and now - self.last_print < self.every_s:
            return
        if self.tty and not force and now - self.last_print < 0.1:
            return
        self.last_print = now
        line = self._line()
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.tty:
            self.stream.write("\r" + self._line().ljust(self._width) + "\n")
            self.stream.flush()
