"""Blame in stacks, and nothing across inner runs (issue 11).

Each deferred-code case of the escape corpus (``tests/corpus/escapes/deferred_*.py``) runs stacked with
an innocent mechanism, before and after it: the attacker ends with the status its file expects, the blame
lands on it, and the innocent stays enabled with no fault and keeps answering. Then a cross-run covert
channel: an inner run that leaves memory held by a self-renewing finaliser chain, probed by the next inner
run of the same session (what a reused worker once let through); the next run must see exactly what it
sees after a benign run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_escape_corpus import CORPUS, SPACE, Case

from bilevel.sandbox import Limits, SandboxSession

LIMITS = Limits(call_timeout_s=3.0, memory_bytes=320 << 20)
INNOCENT = (CORPUS / "benign_tabu.py").read_text(encoding="utf-8")
ATTACKS = sorted(CORPUS.glob("deferred_*.py"))


@pytest.mark.parametrize("attacker_first", [True, False], ids=["attacker-first", "innocent-first"])
@pytest.mark.parametrize("path", ATTACKS, ids=lambda p: p.stem)
def test_blame_lands_on_the_attacker_and_the_innocent_stays_enabled(path: Path, attacker_first: bool) -> None:
    case = Case.read(path)
    stack = [("attacker", path.read_text(encoding="utf-8")), ("innocent", INNOCENT)]
    with SandboxSession(stack if attacker_first else stack[::-1], SPACE, seed=3, budget=6, limits=LIMITS) as s:
        assert all(out.ok for out in s.start().values())
        for t in range(3):
            if "attacker" in s.active:
                s.call("attacker", "propose", t, {})
            assert s.call("innocent", "propose", t, {}).ok
            s.observe({"index": t, "config": {"x": 0.5, "c": "a", "n": 2, "k": 1, "mix": {"a": 0.5, "b": 0.5}},
                       "score": float(t), "kept": True, "source": "test"})
        blamed = s.disabled_reason("attacker")
        assert blamed is not None and blamed.status is case.status and case.message in blamed.message, blamed
        assert s.active == ["innocent"] and s.disabled_reason("innocent") is None and s.fault_count("innocent") == 0


HOARD = '''
def renew(ballast):
    try:
        yield 1
    finally:
        g = renew(ballast)
        next(g)
        box = [g, ballast]
        box.append(box)


def propose(ctx, state):
    g = renew("x" * (96 << 20))
    next(g)
    box = [g]
    box.append(box)
    return None
'''
BENIGN = "def propose(ctx, state):\n    return None\n"
PROBE = '''
def propose(ctx, state):
    try:
        held = "y" * (128 << 20)
        return {"room": len(held) > 0}
    except MemoryError:
        return {"room": False}
'''


def _second_run_sees(first: str) -> object:
    """The probe's answer in the inner run after ``first`` ran, in the same session."""
    with SandboxSession([("first", first)], SPACE, seed=1, budget=2, limits=LIMITS) as s:
        s.start()
        s.call("first", "propose", 0, {})
        s.reload([("probe", PROBE)], seed=2, budget=2)
        out = s.call("probe", "propose", 0, {})
        return out.value if out.ok else out.status


def test_no_covert_channel_from_one_inner_run_to_the_next() -> None:
    assert _second_run_sees(HOARD) == _second_run_sees(BENIGN) == {"room": True}
