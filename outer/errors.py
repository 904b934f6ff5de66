"""The outer package's exceptions."""

from __future__ import annotations


class OuterError(Exception):
    """Base of the outer loop's errors."""


class BudgetExhausted(OuterError):
    """A hard budget (generations, wall time) was reached; the run stops cleanly and can resume."""
