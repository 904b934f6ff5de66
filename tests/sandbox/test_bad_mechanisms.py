"""Broken, hostile and runaway mechanisms end as recorded outcomes with their reasons; the run goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.authors.base import AuthorContext, Candidate
from bilevel.runs import driver
from bilevel.runs.spec import load_spec
from bilevel.runs.store import Store

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"

BAD = {
    "syntax": ("def propose(ctx, state)\n    return None\n", "compile_error"),
    "loop": ("def propose(ctx, state):\n    while True:\n        pass\n", "timeout"),
    "memory": ("def propose(ctx, state):\n    x = 'a' * (10 ** 10)\n    return None\n", "memory"),
    "import_os": ("import os\n\ndef propose(ctx, state):\n    return None\n", "policy_violation"),
    "open_file": ("def propose(ctx, state):\n    open('/tmp/bilevel-escape', 'w')\n    return None\n",
                  "policy_violation"),
    "outside": ("def propose(ctx, state):\n    return {'x0': 99.0, 'x1': 0.0}\n", "contract_violation"),
}


class ScriptedAuthor:
    """Proposes each bad mechanism once, then a good one."""

    name = "scripted"

    def propose(self, ctx: AuthorContext, n: int) -> list[Candidate]:
        if ctx.generation > 0:
            return []
        out = []
        for label, (source, _) in BAD.items():
            mech = Mechanism(label, source)
            out.append(Candidate(Stack((mech,), ctx.incumbent.search), f"add {label}", self.name, (mech,)))
        good = next(m for m in ctx.library if m.name == "tabu")
        out.append(Candidate(Stack((good,), ctx.incumbent.search), "add tabu", self.name, (good,)))
        return out


@pytest.mark.slow
def test_bad_mechanisms_are_recorded_and_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "make_author", lambda name: ScriptedAuthor())
    spec = load_spec(SPEC, {"run": {"generations": 1, "level15": False}, "sandbox": {"call_timeout_s": 1.0}})
    store = Store.in_dir(tmp_path)
    run_id = driver.create_run(store, spec)
    summary = driver.execute(store, run_id)
    assert summary.fields["candidates"] == len(BAD) + 1
    rows = {r["operation"]: r for r in store.candidates(run_id)}
    verdicts = {(v["generation"], v["index"]): v for v in store.verdicts(run_id)}
    for label, (_, status) in BAD.items():
        row = rows[f"add {label}"]
        verdict = verdicts[(row["generation"], row["index"])]
        assert verdict["keep"] is False
        assert verdict["stage"] == "conformance"
        assert status in verdict["reason"], (label, verdict["reason"])
    tabu = verdicts[(0, len(BAD))]
    assert tabu["stage"] != "conformance", tabu["reason"]
    assert not Path("/tmp/bilevel-escape").exists()
