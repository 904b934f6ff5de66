"""What the author is shown, and what lineage and show say about its attempts, in a real scripted run.

One generation of the tiny BBOB run with a scripted model whose first answer runs past the author's
token limit: the cut is recorded, fed back and shown ("answer truncated at N tokens") by ``lineage``
and ``show``; every attempt of a candidate is listed with its outcome; with
``[llm] sequential_candidates = true`` the second candidate's prompt holds the first one's verdict,
its idea is the first answer's, and the prompt carries the generated reference and per-group results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bilevel.outer.authors.llm import FEEDBACK_PREFIX
from bilevel.outer.llm.scripted import TABU_MECHANISM, TIMID_MECHANISM
from bilevel.runs.cli import main
from bilevel.runs.store import Store

TINY = (Path(__file__).parent.parent / "data" / "tiny.toml").read_text()
LIMIT = 300
LONG = TABU_MECHANISM + "".join(f"# note {i}: the tabu radius trades exploration for repeats\n" for i in range(60))


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], sequential: bool) -> tuple[Store, str]:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"author": [LONG, TABU_MECHANISM, TIMID_MECHANISM]}))
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY.replace("generations = 2", "generations = 1")
                    + f"\n[llm]\nauthor_answer_tokens = {LIMIT}\nsequential_candidates = {str(sequential).lower()}\n")
    store_dir = str(tmp_path / "store")
    assert main(["run", "--spec", str(spec), "--store", store_dir, "--model", f"scripted:{script}"]) == 0
    out = capsys.readouterr().out
    run_id = out.split("--- summary ---", 1)[1].split("run: ", 1)[1].split("\n", 1)[0]
    return Store.in_dir(tmp_path / "store"), run_id


@pytest.mark.slow
def test_sequential_candidates_truncation_and_attempts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, run_id = _run(tmp_path, capsys, sequential=True)
    calls = {c["context"]: c for c in store.llm_calls(run_id, "author")}
    assert calls["g0:c0:r0"]["truncated"] and calls["g0:c0:r0"]["tokens_out"] == LIMIT
    assert calls["g0:c0:r1"]["messages"][-1][1].startswith(
        f"{FEEDBACK_PREFIX}truncated: answer truncated at {LIMIT} tokens")

    # The second candidate was written after the first was judged, and its prompt holds that verdict.
    cands = {c["index"]: c for c in store.candidates(run_id)}
    verdicts = {v["index"]: v for v in store.verdicts(run_id)}
    first = cands[0]["operation"]
    assert first.startswith("llm: llm-g0c0-") and "draft 1 for generation 0" in first  # the first answer's idea
    second_prompt = calls["g0:c1:r0"]["messages"][0][1]
    line = next(x for x in second_prompt.splitlines() if x.startswith(f"- g0 {first}: "))
    if verdicts[0]["stage"] == "confirmation":  # it passed validation; the winner is confirmed at the end
        selected = str(verdicts[0]["reason"]).split("selected on validation with mean improvement ", 1)[1]
        assert line.startswith(f"- g0 {first}: PASSED VALIDATION") and "(validation passed: mean improvement " \
            f"{selected.split(' over')[0]}" in line
    else:
        assert line == f"- g0 {first}: REJECTED AT {verdicts[0]['stage'].upper()} ({verdicts[0]['reason'][:300]})"
    assert "not judged yet" not in second_prompt

    # The generated reference and the per-group results reach the model.
    system = calls["g0:c0:r0"]["system"]
    assert "## The base proposer of this run" in system and "the LLM proposes" in system
    assert "budget of 16 trials" in system and '"name": "x0"' in system
    assert "per group (mean score on the search panel" in second_prompt and "f1: incumbent" in second_prompt
    assert '"strategy": "greedy"}; used by the numeric fallback only, since the LLM proposes' in second_prompt

    store_dir = str(tmp_path / "store")
    assert main(["lineage", run_id, "--store", store_dir]) == 0
    lineage = capsys.readouterr().out
    assert f"attempt 1 (first answer, g0:c0:r0): answer truncated at {LIMIT} tokens, fed back" in lineage
    assert "attempt 2 (repair 1, g0:c0:r1): judged (the candidate's verdict)" in lineage
    assert "attempt 1 (first answer, g0:c1:r0): duplicate of a mechanism already tried" in lineage
    assert main(["show", run_id, "--store", store_dir]) == 0
    shown = capsys.readouterr().out
    assert f"truncated calls:\n  author g0:c0:r0: answer truncated at {LIMIT} tokens" in shown
