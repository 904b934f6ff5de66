from __future__ import annotations

import ast
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bilevel.outer.mutate import mutate_constants, tunables

SOURCE = '''"""doc"""
import math

SIZE = 8  # the tabu list length
RADIUS = 0.05
flag = 3
NAME = "x"


def review(ctx, state, candidate):
    return None
'''


def test_tunables_are_the_uppercase_numbers() -> None:
    assert [(t.name, t.value) for t in tunables(SOURCE)] == [("SIZE", 8), ("RADIUS", 0.05)]


def test_mutation_changes_a_value_and_keeps_the_rest() -> None:
    out = mutate_constants(SOURCE, random.Random(1), count=2)
    assert out is not None
    source, changes = out
    assert len(changes) == 2
    new = {t.name: t.value for t in tunables(source)}
    assert new["SIZE"] != 8 and isinstance(new["SIZE"], int)
    assert new["RADIUS"] != 0.05
    assert "# the tabu list length" in source and "flag = 3" in source
    ast.parse(source)


def test_no_tunables() -> None:
    assert mutate_constants("def propose(ctx, state):\n    return None\n", random.Random(0)) is None


@given(st.integers(0, 10_000), st.integers(1, 3))
@settings(max_examples=50, deadline=None)
def test_mutants_always_parse(seed: int, count: int) -> None:
    out = mutate_constants(SOURCE, random.Random(seed), count)
    assert out is not None
    ast.parse(out[0])
    assert out[0] != SOURCE
