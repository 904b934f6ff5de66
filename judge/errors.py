"""The judge's exceptions: one small tree, so callers can catch ``JudgeError`` for all of them."""

from __future__ import annotations


class JudgeError(Exception):
    """Something the judge cannot do as asked; the message says what and how to fix it."""


class UnknownBenchmark(JudgeError):
    """A benchmark name that is not registered; the message lists the known names."""


class ManifestMismatch(JudgeError):
    """The judge a run recorded differs from the judge now installed; the run cannot continue."""


class BenchmarkError(JudgeError):
    """A benchmark was configured or used wrongly (unknown option, bad value, unknown instance)."""
