"""Stand-in user callables that misbehave, for the ``python`` benchmark's fault tests."""

from __future__ import annotations

import os
import time
from typing import Any


def chatty(config: dict[str, Any], instance: str, seed: int) -> float:
    print("a line on stdout must not corrupt the reply channel")
    return float(config["x"])


def slow_above(config: dict[str, Any], instance: str, seed: int) -> float:
    if float(config["x"]) > 0.9:
        time.sleep(30)
    return float(config["x"])


def dies_above(config: dict[str, Any], instance: str, seed: int) -> float:
    if float(config["x"]) > 0.9:
        os._exit(7)
    return float(config["x"])


def raises_above(config: dict[str, Any], instance: str, seed: int) -> float:
    if float(config["x"]) > 0.9:
        raise ValueError("x too large")
    return float(config["x"])


def pid(config: dict[str, Any], instance: str, seed: int) -> float:
    return float(os.getpid())


def fails_after_first(config: dict[str, Any], instance: str, seed: int) -> float:
    """Passes its first trial (the pre-flight one), then fails every trial: the marker file in the
    working folder (the run's workdir) remembers it across processes."""
    if os.path.exists("preflight-done"):
        raise RuntimeError("the data set vanished")
    with open("preflight-done", "w") as fh:
        fh.write("1")
    return float(config["x"])


def fails_on_odd_seeds(config: dict[str, Any], instance: str, seed: int) -> float:
    """Fails the trials of odd seeds only: a run that goes on and counts its failed trials."""
    if seed % 2 and float(config["x"]) > 0.5:
        raise RuntimeError(f"odd seed {seed}")
    return (float(config["x"]) - 0.3) ** 2


def slow(config: dict[str, Any], instance: str, seed: int) -> float:
    """A trial that takes a while: a run is still going when the test signals it."""
    time.sleep(0.2)
    return float(config["x"])
