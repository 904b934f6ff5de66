"""A stand-in user callable for the ``python`` benchmark tests."""

from __future__ import annotations

from typing import Any


def quadratic(config: dict[str, Any], instance: str, seed: int) -> dict[str, Any]:
    return {"score": (float(config["x"]) - 0.5) ** 2, "subscores": {"accuracy": 1.0 - abs(float(config["x"]) - 0.5)}}


def plain(config: dict[str, Any], instance: str, seed: int) -> float:
    return float(config["x"])
