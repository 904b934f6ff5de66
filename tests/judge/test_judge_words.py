"""Honest words: "accelerating" needs 3 generations and a stated test; the issue's example reads "no"."""

from __future__ import annotations

import dataclasses

import pytest

from bilevel.runs.rsi import RsiMetrics, slope_test

BASE = RsiMetrics(gains=(), slope=0.0, acceptance=0.0, activation=0.0, distinct_mechanisms=0, diversity=0.0,
                  val_improvement=0.0, test_improvement=0.0, transfer_test=0.0, tokens=0, dollars=0.0, trials=0)


def _words(*gains: float) -> str:
    return dataclasses.replace(BASE, gains=gains, slope=1.0).accelerating


def test_fewer_than_three_generations_is_not_applicable() -> None:
    assert _words(0.1, 0.3) == "n/a (fewer than 3 generations)"
    assert _words() == "n/a (fewer than 3 generations)"


def test_one_lucky_generation_is_not_acceleration() -> None:
    """The issue's example: gains 0, 0, 0.305, 0 printed "accelerating: yes"."""
    assert slope_test([0.0, 0.0, 0.305, 0.0]) == pytest.approx(0.5)  # 12 of 24 orderings
    assert _words(0.0, 0.0, 0.305, 0.0).startswith("no; one-sided permutation test of the slope over 4 generations")


def test_steadily_growing_gains_are_acceleration_with_their_p_value() -> None:
    assert slope_test([0.0, 0.1, 0.2, 0.3, 0.4]) == pytest.approx(1 / 120)
    assert _words(0.0, 0.1, 0.2, 0.3, 0.4) == ("yes; one-sided permutation test of the slope over 5 generations, "
                                               "p = 0.00833 (yes needs p <= 0.05)")
    assert slope_test([0.0] * 5) == 1.0
    assert slope_test([float(g) for g in range(12)]) == pytest.approx(1 / 20_000, abs=1e-4)  # sampled orderings
