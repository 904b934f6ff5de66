"""`bilevel show`'s compact lineage tells the adopted winner from a candidate that passed but was not adopted."""

from __future__ import annotations

from pathlib import Path

from bilevel.inner.search_config import SearchConfig
from bilevel.judge.decision import Verdict
from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.authors.base import Candidate
from bilevel.runs.store import Store
from bilevel.runs.views import lineage_lines


def _verdict(keep: bool, mean: float) -> Verdict:
    word = "kept" if keep else "rejected"
    return Verdict(keep, "full", f"{word}: mean improvement {mean}", mean, mean - 0.1, mean + 0.1, 8, "", 0.0,
                   0.5, 1.0, 0.0, "m")


def test_passed_not_adopted_is_not_called_kept(tmp_path: Path) -> None:
    store = Store.in_dir(tmp_path)
    store.create_run("r1", {}, {}, "m")
    rec = store.recorder("r1")
    baseline = Stack((), SearchConfig())
    stacks = [Stack((Mechanism(name, f"# {name}\n"),), SearchConfig()) for name in ("a", "b", "c")]
    for i, (stack, keep, mean) in enumerate(zip(stacks, (True, True, False), (0.5, 0.3, -0.2), strict=True)):
        rec.record_candidate(0, i, Candidate(stack, f"add {'abc'[i]}", "offline"), baseline.key)
        rec.record_verdict(0, i, stack.key, _verdict(keep, mean))
    rec.record_event("gen:0:end", "generation_end", {"generation": 0, "incumbent": stacks[0].key, "kept": "add a"})
    lines = lineage_lines(store, "r1")
    by_op = {op: next(line for line in lines if f" {op} -> " in line) for op in ("add a", "add b", "add c")}
    assert "-> KEPT mean improvement 0.5" in by_op["add a"]
    assert "-> PASSED, not adopted" in by_op["add b"] and "KEPT" not in by_op["add b"]
    assert "-> rejected: mean improvement -0.2" in by_op["add c"]
