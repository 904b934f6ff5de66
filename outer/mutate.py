"""Source-level mutation of mechanisms: their UPPER_CASE tunables.

The offline author changes a mechanism by editing its source text, so every
mutant is real source that goes through the sandbox and the judge like any
other candidate.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass

FACTORS = (0.5, 0.7, 1.5, 2.0)


@dataclass(frozen=True)
class Tunable:
    """A module-level ``NAME = number`` assignment and where its number stands in the source."""

    name: str
    value: int | float
    line: int  # 1-based
    col: int
    end_col: int


def tunables(source: str) -> list[Tunable]:
    """The UPPER_CASE numeric constants assigned at module level, in source order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out: list[Tunable] = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not (isinstance(target, ast.Name) and target.id.isupper()):
            continue
        if isinstance(value, ast.Constant) and type(value.value) in (int, float):
            number = value.value
            assert isinstance(number, int | float)
            if value.end_lineno == value.lineno and value.end_col_offset is not None:
                out.append(Tunable(target.id, number, value.lineno, value.col_offset, value.end_col_offset))
    return out


def _new_value(value: int | float, factor: float) -> int | float:
    if isinstance(value, int):
        changed = max(1, round(value * factor))
        return changed if changed != value else value + (1 if factor > 1 else -1 if value > 1 else 1)
    return float(f"{value * factor:.6g}")


def set_tunable(source: str, tunable: Tunable, value: int | float) -> str:
    """``source`` with ``tunable``'s number replaced by ``value`` (everything else untouched)."""
    lines = source.splitlines(keepends=True)
    row = lines[tunable.line - 1]
    lines[tunable.line - 1] = row[: tunable.col] + repr(value) + row[tunable.end_col :]
    return "".join(lines)


def mutate_constants(source: str, rng: random.Random, count: int = 1) -> tuple[str, list[str]] | None:
    """Change ``count`` tunables by a random factor; None when the source has none."""
    found = tunables(source)
    if not found:
        return None
    changes: list[str] = []
    for tunable in sorted(rng.sample(found, min(count, len(found))), key=lambda t: (-t.line, -t.col)):
        value = _new_value(tunable.value, rng.choice(FACTORS))
        source = set_tunable(source, tunable, value)
        changes.append(f"{tunable.name} {tunable.value!r} -> {value!r}")
    return source, sorted(changes)
