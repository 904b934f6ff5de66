"""The offline author's structural operators (outer.graft, outer.mutate) and its behavioural dedupe (outer.probe).

Each operator makes a candidate that compiles under the sandbox policy, passes the conformance check,
is new source and searches differently from the incumbent on the probe problems; two sources that make
identical proposals on the probes are one candidate, two that differ are two; the candidate says which
operator made it; the same seed gives the same candidates.
"""

from __future__ import annotations

import functools
import random

import pytest

from bilevel.inner.space import FloatParam, Space
from bilevel.judge.conformance import check_conformance
from bilevel.judge.stack import Mechanism, Stack
from bilevel.mechanisms.library import BUILTIN_NAMES, load_source
from bilevel.outer.authors.base import AuthorContext, Candidate
from bilevel.outer.authors.offline import OfflineAuthor
from bilevel.outer.probe import probe
from bilevel.outer.traces import analyse
from bilevel.sandbox import compile_mechanism

STRUCTURAL = ("graft", "cross", "block", "point", "guard", "screen")
LIBRARY = tuple(Mechanism(n, load_source(n)) for n in BUILTIN_NAMES)
BY_NAME = {m.name: m for m in LIBRARY}
INCUMBENT = Stack((BY_NAME["tabu"], BY_NAME["trust_region"]))
SPACE = Space((FloatParam("x0", -5, 5), FloatParam("x1", -5, 5)))


def _ctx(incumbent: Stack = INCUMBENT, library: tuple[Mechanism, ...] = LIBRARY, seed: int = 7,
         generation: int = 0) -> AuthorContext:
    return AuthorContext(generation, seed, incumbent, library, analyse(SPACE, []), frozenset())


@functools.cache
def _behaviour(stack: Stack) -> str | None:
    result = probe(stack)
    return None if result is None else result.fingerprint


def _made_by(operator: str, seed: int) -> Candidate:
    """The first candidate ``operator`` makes for the incumbent (before the author's vetting)."""
    author = OfflineAuthor()
    makers = {name: make for name, make, _ in author._makers(_ctx(), random.Random(f"{operator}:{seed}"))}
    for _ in range(50):
        made = makers[operator]()
        if made is not None:
            return made
    raise AssertionError(f"{operator} made nothing in 50 tries")


@pytest.mark.parametrize("operator", STRUCTURAL)
def test_each_structural_operator_makes_a_valid_novel_candidate(operator: str) -> None:
    cand = _made_by(operator, seed=1)
    assert cand.operation.split()[0] == operator
    (new,) = cand.new
    assert new in cand.stack.mechanisms
    assert new.source not in {m.source for m in LIBRARY}, "the operator returned an existing source"
    assert set(cand.parents) <= {m.id for m in LIBRARY}
    assert compile_mechanism(new.source).ok
    report = check_conformance(new.source, max_examples=3)
    assert report.ok, report
    fingerprint = _behaviour(cand.stack)
    assert fingerprint is not None, "the candidate faults on the probe problems"
    assert fingerprint != _behaviour(INCUMBENT), "the candidate searches exactly as the incumbent does"


def test_every_made_candidate_compiles() -> None:
    """Cheaper and wider than the test above: several candidates of every operator, compile only."""
    for operator in STRUCTURAL:
        for seed in range(2, 6):
            (new,) = _made_by(operator, seed).new
            assert compile_mechanism(new.source).ok, (operator, seed, new.source)


def _clone(mech: Mechanism, name: str) -> Mechanism:
    """Other source text (an unused constant, a comment) with the same behaviour."""
    return Mechanism(name, mech.source + "\n# a clone\nNEVER_READ = 3\n")


def test_behaviour_merges_identical_proposals_and_keeps_different_ones() -> None:
    tabu = BY_NAME["tabu"]
    clone = _clone(tabu, "tabu_clone")
    assert clone.id != tabu.id and clone.source != tabu.source
    same = _behaviour(Stack((tabu,)))
    assert same is not None
    assert _behaviour(Stack((clone,))) == same
    assert _behaviour(Stack((BY_NAME["trust_region"],))) not in (None, same)


def test_the_author_offers_one_of_two_behaviourally_identical_candidates() -> None:
    tabu, trust = BY_NAME["tabu"], BY_NAME["trust_region"]
    clone = _clone(tabu, "tabu_clone")
    author = OfflineAuthor(structural=False)
    out = author.propose(_ctx(Stack(), (tabu, clone, trust)), 4)
    assert out
    ops = [c.operation for c in out]
    assert not {"add tabu", "add tabu_clone"} <= set(ops), ops
    fingerprints = [c.behaviour for c in out]
    assert len(set(fingerprints)) == len(fingerprints)
    assert author.behaviour_of(Stack((clone,))) == author.behaviour_of(Stack((tabu,)))
    # two that differ are both offered when both are made
    singles = {c.operation for c in out if c.operation.startswith("add ") and " and " not in c.operation}
    assert "add trust_region" in singles and singles & {"add tabu", "add tabu_clone"}, ops


def test_the_author_is_seeded_replayable_and_names_each_operator() -> None:
    incumbent = Stack((BY_NAME["quad_surrogate"],))
    first = OfflineAuthor().propose(_ctx(incumbent, seed=3), 2)
    again = OfflineAuthor().propose(_ctx(incumbent, seed=3), 2)
    assert [(c.stack.key, c.operator, c.behaviour, [m.source for m in c.new]) for c in first] == \
        [(c.stack.key, c.operator, c.behaviour, [m.source for m in c.new]) for c in again]
    other = OfflineAuthor().propose(_ctx(incumbent, seed=4), 2)
    assert [c.stack.key for c in other] != [c.stack.key for c in first]
    for cand in first:
        assert cand.to_json()["operator"] == cand.operator
        word = cand.operation.split()[0]
        assert word == cand.operator or (cand.operator == "pair" and word == "add"), (cand.operator, cand.operation)


def test_probe_names_a_proposer_shadowed_by_one_that_always_proposes() -> None:
    cma, quad = BY_NAME["cma_rank_one"], BY_NAME["quad_surrogate"]
    shadowed = probe(Stack((cma, quad)))
    assert shadowed is not None and quad.id in shadowed.inert and cma.id not in shadowed.inert
    both = probe(Stack((quad, cma)))
    assert both is not None and both.inert == ()


def test_the_author_moves_a_new_mechanism_that_acts_on_no_probe_trial() -> None:
    cma, quad = BY_NAME["cma_rank_one"], BY_NAME["quad_surrogate"]
    author = OfflineAuthor(structural=False)
    made = Candidate(Stack((cma, quad)), "add cma_rank_one and quad_surrogate", "offline", (cma, quad))
    placed = author._active_placement(made, set())
    assert placed is not None
    moved, fingerprint = placed
    assert moved.stack.mechanism_ids == (quad.id, cma.id)
    assert "placed quad_surrogate > cma_rank_one" in moved.operation
    assert fingerprint == author.behaviour_of(Stack((quad, cma)))
    # on an incumbent that always proposes, an added surrogate goes in front of it
    added = Candidate(Stack((cma, quad)), "add quad_surrogate", "offline", (quad,))
    front = author._active_placement(added, set())
    assert front is not None and front[0].stack.mechanism_ids == (quad.id, cma.id)
    # a new mechanism that acts in no order (the sham control's 1e-12 nudge) is dropped
    sham = Mechanism("sham", load_source("sham"))
    assert author._active_placement(Candidate(Stack((cma, sham)), "add sham", "offline", (sham,)), set()) is None
