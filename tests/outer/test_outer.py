"""Trace analysis, the offline author and Level 1.5 (the offline author probes its candidates through the sandbox)."""

from __future__ import annotations

import pytest

from bilevel.inner.records import InnerResult, Trial
from bilevel.inner.search_config import SearchConfig
from bilevel.inner.space import FloatParam, Space
from bilevel.judge.stack import Mechanism, Stack
from bilevel.mechanisms.library import BUILTIN_NAMES, load_source
from bilevel.outer.authors.base import AuthorContext
from bilevel.outer.authors.offline import OfflineAuthor
from bilevel.outer.level15 import propose_config
from bilevel.outer.mutate import tunables
from bilevel.outer.traces import TraceReport, analyse

SPACE = Space((FloatParam("x0", -5, 5), FloatParam("x1", -5, 5), FloatParam("x2", -5, 5)))


def _trial(i: int, x0: float, x1: float, score: float, kept: bool) -> Trial:
    return Trial(i, {"x0": x0, "x1": x1, "x2": 0.0}, score, kept, "base:greedy")


def _trace() -> InnerResult:
    return InnerResult((
        _trial(0, 0.0, 0.0, 10.0, True),
        _trial(1, 1.0, 0.0, 5.0, True),   # x0 moved, big gain
        _trial(2, 1.0, 0.5, 4.9, True),   # x1 moved, small gain
        _trial(3, 1.0, 0.5, 4.9, False),  # a repeat
        _trial(4, 2.0, 0.5, 6.0, False),
        _trial(5, 1.0, 0.6, 4.95, False),
    ))


def test_trace_analysis_finds_repeats_plateaus_and_frozen_parameters() -> None:
    report = analyse(SPACE, [_trace()])
    assert report.n_trials == 6
    assert report.repeated_share == 1 / 6
    assert report.never_moved == ("x2",)
    assert report.longest_plateau == 3 and report.plateau_share == 3 / 6
    assert report.kept_share == 3 / 6
    assert report.sensitivity["x0"] > report.sensitivity["x1"] > 0
    assert any("never moved: x2" in line for line in report.lines())


def _library() -> tuple[Mechanism, ...]:
    return tuple(Mechanism(n, load_source(n)) for n in BUILTIN_NAMES)


def _ctx(incumbent: Stack, generation: int = 0, tried: frozenset[str] = frozenset()) -> AuthorContext:
    return AuthorContext(generation, 7, incumbent, _library(), analyse(SPACE, [_trace()]), tried)


@pytest.mark.slow  # 40-100 s on 2 shared cores: every candidate is probed; test_operators covers determinism
def test_offline_author_is_deterministic_and_never_repeats_itself() -> None:
    author = OfflineAuthor()
    stack = Stack((_library()[0],))
    first = author.propose(_ctx(stack), 6)
    again = author.propose(_ctx(stack), 6)
    assert [c.stack.key for c in first] == [c.stack.key for c in again]
    keys = [c.stack.key for c in first]
    assert len(set(keys)) == len(keys) == 6
    assert stack.key not in keys
    later = author.propose(_ctx(stack, tried=frozenset(keys)), 6)
    assert not set(keys) & {c.stack.key for c in later}


@pytest.mark.slow  # 30 candidates, each probed: 60-100 s on 2 shared cores
def test_offline_mutants_are_real_source_changes() -> None:
    author = OfflineAuthor()
    stack = Stack(_library()[:2])
    mutants = [c for g in range(6) for c in author.propose(_ctx(stack, g), 5) if c.operation.startswith("mutate")]
    assert mutants, "six generations of five candidates produced no mutation"
    for cand in mutants:
        (new,) = cand.new
        (parent_id,) = cand.parents
        parent = next(m for m in stack.mechanisms if m.id == parent_id)
        assert new.source != parent.source
        assert [t.name for t in tunables(new.source)] == [t.name for t in tunables(parent.source)]
        assert new in cand.stack.mechanisms and parent not in cand.stack.mechanisms


def test_level15_changes_only_the_search_config() -> None:
    stack = Stack(_library()[:1], SearchConfig(step_size=0.2))
    cand = propose_config(stack, analyse(SPACE, [_trace()]), 0)
    assert cand is not None
    assert cand.stack.mechanisms == stack.mechanisms
    assert cand.stack.search != stack.search
    assert cand.new == ()


def test_level15_widens_steps_on_plateaus() -> None:
    plateau = TraceReport(1, 50, 0.2, (), 40, 0.8, 0.0, 0.0, 0.02, {"x0": 1.0}, {"x0": 0.5})
    cand = propose_config(Stack(), plateau, 0)
    assert cand is not None and cand.stack.search.step_size > Stack().search.step_size
