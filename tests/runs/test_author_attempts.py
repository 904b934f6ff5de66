"""Every attempt of an LLM candidate, read back from the transcripts, with what came of it.

Calls are recorded as a run records them; the outcomes come from what the author was told next (the
feedback that opens a repair) or from the backend's end-of-length flag, and a candidate that never
reached the judge is listed with the reason its last answer was dropped.
"""

from __future__ import annotations

from pathlib import Path

from bilevel.inner.chat import CallRecord
from bilevel.judge.stack import Mechanism
from bilevel.outer.authors.llm import MAX_MECHANISM_CHARS, _feedback
from bilevel.runs.author_attempts import author_attempts, candidate_of, truncation_lines, unjudged_lines
from bilevel.runs.store import Store

GOOD = '"""Good."""\n\ndef guide(ctx, state):\n    return None\n'


def _call(context: str, messages: list[tuple[str, str]], response: str, level: str = "author",
          truncated: bool = False, tokens_out: int = 100, error: str = "") -> dict[str, object]:
    return CallRecord(key=context, occurrence=0, level=level, context=context, model="scripted:x", settings={},
                      system="s", messages=tuple(messages), response=response, tokens_in=10, tokens_out=tokens_out,
                      latency_s=0.1, cost_usd=0.0, error=error, truncated=truncated).to_json()


def _answer(source: str) -> str:
    return f"An idea.\n\n```python\n{source}```\n"


def _store(tmp_path: Path) -> tuple[Store, str]:
    store = Store.in_dir(tmp_path)
    store.create_run("r1", {}, {}, "h")
    rec = store.recorder("r1")
    first = ("user", "Write candidate 1 of generation 0")
    compile_fail = _feedback({"status": "compile_error", "message": "line 1: invalid syntax\nmore lines"})
    rec.record_llm_call(_call("g0:c0:r0", [first], "cut", truncated=True, tokens_out=8192))
    cut_fail = _feedback({"status": "truncated", "message": "answer truncated at 8192 tokens (the model's max_tokens)"})
    rec.record_llm_call(_call("g0:c0:r1", [first, ("assistant", "cut"), ("user", cut_fail)], "def guide(:"))
    rec.record_llm_call(_call("g0:c0:r2", [first, ("assistant", "cut"), ("user", cut_fail), ("assistant", "x"),
                                           ("user", compile_fail)], _answer(GOOD)))
    second = ("user", "Write candidate 2 of generation 0")
    long_source = "def guide(ctx, state):\n" + "    x = 1\n" * (MAX_MECHANISM_CHARS // 9)
    rec.record_llm_call(_call("g0:c1:r0", [second], _answer(long_source)))
    rec.record_llm_call(_call("g0:c2:r0", [("user", "Write candidate 3")], _answer(GOOD)))  # a duplicate of c0
    rec.record_mechanism(Mechanism("llm-g0c0-good", GOOD), "llm", 0, ())
    rec.record_llm_call(_call("e0:t3:a0:r0", [("user", "propose")], "{", level="inner", truncated=True, tokens_out=64))
    return store, "r1"


def test_each_attempt_has_its_outcome(tmp_path: Path) -> None:
    store, run_id = _store(tmp_path)
    attempts = author_attempts(store, run_id)
    assert [a.line() for a in attempts[(0, 0)]] == [
        "attempt 1 (first answer, g0:c0:r0): answer truncated at 8192 tokens, fed back",
        "attempt 2 (repair 1, g0:c0:r1): compile error: line 1: invalid syntax",
        "attempt 3 (repair 2, g0:c0:r2): judged (the candidate's verdict)"]
    (only,) = attempts[(0, 1)]
    assert only.outcome.startswith("over-long source: source of ") and f"> {MAX_MECHANISM_CHARS}" in only.outcome
    assert only.outcome.endswith("; not judged")
    assert candidate_of("llm: llm-g0c0-good: An idea.") == (0, 0) and candidate_of("config: narrow step") is None


def test_candidates_that_never_reached_the_judge_say_why(tmp_path: Path) -> None:
    store, run_id = _store(tmp_path)
    lines = unjudged_lines(store, run_id, judged={(0, 0)})
    assert lines[0] == "g0 candidate 2 by llm: not judged"
    assert lines[2] == "g0 candidate 3 by llm: not judged"
    assert lines[3].endswith("not judged: its mechanism is one already tried or on the incumbent (a duplicate)")


def test_show_lists_every_call_cut_at_the_limit(tmp_path: Path) -> None:
    store, run_id = _store(tmp_path)
    assert truncation_lines(store, run_id) == ["author g0:c0:r0: answer truncated at 8192 tokens",
                                               "inner e0:t3:a0:r0: answer truncated at 64 tokens"]
