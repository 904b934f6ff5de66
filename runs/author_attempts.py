"""Every attempt of the LLM author, read back from the run's transcripts: for ``lineage`` and ``show``.

The author asks once per candidate and once per repair; each call is recorded with the context
``g{generation}:c{candidate}:r{repair}``. An attempt's outcome is what the author was told next (the
feedback message that opens the following repair: compile error, policy violation, conformance
failure, over-long source, duplicate), or, for an answer cut at the token limit, the backend's own
signal ("answer truncated at N tokens"); the last attempt of a candidate is judged unless it was cut
or over-long. Nothing here re-runs a check: it reads what was recorded.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bilevel.mechanisms.contract import source_hash
from bilevel.outer.authors.llm import FEEDBACK_PREFIX, answer_problem, extract_source
from bilevel.runs.store import Store

_CONTEXT = re.compile(r"^g(\d+):c(\d+):r(\d+)$")
_LLM_OPERATION = re.compile(r"^llm: llm-g(\d+)c(\d+)\b")
MAX_TRUNCATION_LINES = 50
STATUS_WORDS = {"compile_error": "compile error", "policy_violation": "policy violation",
                "contract_violation": "conformance failure (contract)", "too_long": "over-long source",
                "truncated": "truncated", "duplicate": "duplicate of a mechanism already tried"}


@dataclass(frozen=True)
class Attempt:
    """One author call of one candidate: which repair it was and what came of it."""

    generation: int
    candidate: int  # the author's 0-based candidate number in its generation
    repair: int  # 0: the first answer
    outcome: str

    def line(self) -> str:
        what = "first answer" if self.repair == 0 else f"repair {self.repair}"
        return f"attempt {self.repair + 1} ({what}, g{self.generation}:c{self.candidate}:r{self.repair}): {self.outcome}"


def truncation_text(call: dict[str, Any]) -> str:
    """The words ``lineage`` and ``show`` use for a call cut at the token limit."""
    return f"answer truncated at {int(call.get('tokens_out', 0))} tokens"


def _feedback_outcome(next_call: dict[str, Any]) -> str | None:
    """The outcome an attempt was told in the next call's last user message, if that was a check's feedback."""
    messages = next_call.get("messages") or []
    last = str(messages[-1][1]) if messages else ""
    if not last.startswith(FEEDBACK_PREFIX):
        return None
    status, _, message = last[len(FEEDBACK_PREFIX):].partition(": ")
    message = message.split("\n", 1)[0]  # the first line; the traceback and the example stay in the transcript
    words = STATUS_WORDS.get(status, f"conformance failure ({status})")
    return f"{words}: {message}"[:300]


def _outcome(call: dict[str, Any], following: dict[str, Any] | None) -> str:
    if call.get("error"):
        return f"call failed: {call['error']}"[:300]
    if call.get("truncated"):
        return truncation_text(call) + (", fed back" if following is not None else "; not judged")
    told = _feedback_outcome(following) if following is not None else None
    if told is not None:
        return told
    source, _ = extract_source(str(call.get("response", "")))
    problem = answer_problem(source, False, int(call.get("tokens_out", 0)))
    if problem is not None:
        return f"{STATUS_WORDS['too_long']}: {problem['message']}; not judged"
    return "judged (the candidate's verdict)" if following is None else "answered again"


def author_attempts(store: Store, run_id: str) -> dict[tuple[int, int], list[Attempt]]:
    """(generation, candidate) -> its attempts in order, from the run's author transcripts."""
    conversations: dict[tuple[int, int], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for call in store.llm_calls(run_id, "author"):
        m = _CONTEXT.match(str(call.get("context", "")))
        if m:
            conversations[(int(m.group(1)), int(m.group(2)))].append((int(m.group(3)), call))
    out: dict[tuple[int, int], list[Attempt]] = {}
    for (g, c), calls in sorted(conversations.items()):
        calls.sort(key=lambda rc: (rc[0], int(rc[1].get("occurrence", 0))))
        out[(g, c)] = [Attempt(g, c, r, _outcome(call, calls[i + 1][1] if i + 1 < len(calls) else None))
                       for i, (r, call) in enumerate(calls)]
    return out


def candidate_of(operation: str) -> tuple[int, int] | None:
    """(generation, candidate) of an LLM author's candidate, from its operation (``llm: llm-g0c1-...``)."""
    m = _LLM_OPERATION.match(operation)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _why_not_judged(store: Store, run_id: str, last: Attempt, g: int, c: int) -> Attempt:
    """The last attempt of a candidate that never reached the judge, with the reason where the record shows it."""
    if not last.outcome.startswith("judged"):
        return last
    calls = [x for x in store.llm_calls(run_id, "author") if x.get("context") == f"g{g}:c{c}:r{last.repair}"]
    source, _ = extract_source(str(calls[-1].get("response", ""))) if calls else ("", "")
    known = {m["id"] for m in store.mechanisms(run_id)}
    why = ("not judged: its mechanism is one already tried or on the incumbent (a duplicate)"
           if source_hash(source)[:16] in known else "not judged: no candidate was made from it")
    return Attempt(last.generation, last.candidate, last.repair, why)


def unjudged_lines(store: Store, run_id: str, judged: set[tuple[int, int]]) -> list[str]:
    """The author's candidates that never reached the judge (every attempt failed or was cut), with attempts."""
    lines: list[str] = []
    for (g, c), attempts in author_attempts(store, run_id).items():
        if (g, c) in judged or not attempts:
            continue
        attempts = [*attempts[:-1], _why_not_judged(store, run_id, attempts[-1], g, c)]
        lines.append(f"g{g} candidate {c + 1} by llm: not judged")
        lines.extend(f"    {a.line()}" for a in attempts)
    return lines


def truncation_lines(store: Store, run_id: str) -> list[str]:
    """One line per model call cut at its token limit (``bilevel show``), author calls first; read in SQLite,
    so a run with many thousand proposer calls is not loaded."""
    rows = store.db.execute(
        "SELECT level, context, json_extract(data, '$.tokens_out') FROM llm_calls WHERE run_id = ? "
        "AND json_extract(data, '$.truncated') = 1 ORDER BY level != 'author', seq", (run_id,)).fetchall()
    lines = [f"{level} {context}: {truncation_text({'tokens_out': tokens or 0})}"
             for level, context, tokens in rows[:MAX_TRUNCATION_LINES]]
    if len(rows) > MAX_TRUNCATION_LINES:
        lines.append(f"... and {len(rows) - MAX_TRUNCATION_LINES} more calls cut at the limit "
                     f"(bilevel transcripts {run_id} shows them)")
    return lines
