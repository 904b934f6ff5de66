"""Shared by the inner loop's and the sandbox's tests: a small objective over floats and a simplex."""

from __future__ import annotations

from bilevel.inner.objective import ObjectiveError
from bilevel.inner.space import Config, FloatParam, SimplexParam, Space

SPACE = Space((FloatParam("x", -1, 1), FloatParam("y", -1, 1), SimplexParam("mix", ("a", "b", "c"))))


class Sphere:
    """A test objective; fails on configs with x > 0.9 to exercise failed trials."""

    def __init__(self) -> None:
        self.seen: list[Config] = []

    @property
    def space(self) -> Space:
        return SPACE

    def evaluate(self, config: Config) -> float:
        self.seen.append(config)
        if config["x"] > 0.9:
            raise ObjectiveError("x too large for this test objective")
        return config["x"] ** 2 + config["y"] ** 2 + config["mix"]["a"]
