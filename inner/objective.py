"""The protocol the inner loop optimises against. Benchmarks (in ``judge``) implement it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bilevel.inner.space import Config, Space


class ObjectiveError(Exception):
    """The objective failed on one config; the inner loop records the trial as failed and goes on."""


@runtime_checkable
class Objective(Protocol):
    """One benchmark instance with one seed, ready to evaluate configs.

    ``evaluate`` is called once per trial, with a config that
    ``space.validate`` accepted; it returns the value to minimise, or raises
    ObjectiveError (recorded as a failed trial).
    """

    @property
    def space(self) -> Space: ...

    def evaluate(self, config: Config) -> float: ...
