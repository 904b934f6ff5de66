"""Shared by the judge's and the runs' tests: an Evidence built from paired differences."""

from __future__ import annotations

from bilevel.judge.decision import Evidence


def evidence_from_diffs(diffs: list[float], groups: int = 8) -> Evidence:
    """Evidence whose pair i improves by diffs[i] over a baseline of 1.0, spread over `groups` groups."""
    n = len(diffs)
    return Evidence(tuple(f"i{j}@{j}" for j in range(n)), tuple(f"g{j % groups}" for j in range(n)),
                    tuple(1.0 - d for d in diffs), tuple(1.0 for _ in diffs), {}, 0.5, 0.5, 0.0)
