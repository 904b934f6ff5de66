"""The LLM author: the same model as the inner proposer writes mechanism source.

``propose`` is called once per generation (or, with ``[llm] sequential_candidates``,
once per candidate, after the previous ones of the generation were judged). For each
candidate it asks the model once, with a prompt (``prompts/author_v2.txt``, versioned,
hashed) whose system part holds the reference generated from the code for this run
(``outer.authors.reference``: the space and config format, spacekit's API, the facades'
allow-lists, the policy's rules, the limits, real ctx/state/trial dicts, the conformance
check, which guidance the base proposer honours) and whose user part holds the inner
loop's real source and the mechanism contract (read from the installed modules at run
time), the incumbent mechanisms' sources, the trace analysis (with per-group results), the
library, and the lineage so far: each candidate's idea (from its first answer), and its
outcome: kept, passed but not adopted, or rejected with the reason. The answer's ``python`` block is checked (compile, policy,
conformance) with the check the outer loop uses; a failure is fed back for at
most ``repairs`` repairs. The last attempt becomes the candidate whatever
happened: the outer loop's own conformance check then rejects it and the
reason goes into the lineage, so every failure is on the record.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bilevel.inner.chat import Caller, ChatRequest
from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.authors.base import AuthorContext, Candidate
from bilevel.outer.authors.brief import AuthorBrief
from bilevel.outer.authors.reference import reference_text

PROMPT_DIR = Path(__file__).parent / "prompts"
PROMPT_VERSION = "author_v2"
FEEDBACK_PREFIX = "The sandbox check failed: "  # how a failed attempt is fed back (``lineage`` reads it back)
MAX_MECHANISM_CHARS = 12_000  # stated in the prompt; a longer source is refused and fed back, never cut
MAX_FEEDBACK_CHARS = 1500
MAX_LINEAGE = 20

Check = Callable[[str], dict[str, Any]]  # source -> conformance report JSON ("ok", "status", "message", "example")


@lru_cache(maxsize=2)
def prompt_texts(version: str = PROMPT_VERSION) -> tuple[str, str, str]:
    """(system prompt, user template, hash of both) of a prompt version."""
    system = (PROMPT_DIR / f"{version}.txt").read_text(encoding="utf-8")
    user = (PROMPT_DIR / f"{version.replace('_v', '_user_v')}.txt").read_text(encoding="utf-8")
    return system, user, hashlib.sha256((system + "\0" + user).encode()).hexdigest()[:16]


def module_source(name: str) -> str:
    """The source of an installed module, read at run time (the prompt shows the code that really runs)."""
    return inspect.getsource(importlib.import_module(name))


_HOOK_DEF = re.compile(r"^def (propose|review|guide|observe)\s*\(", re.MULTILINE)
_PYTHON_TAGS = {"", "python", "py", "python3"}


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block of a Markdown answer as (info tag, body), in order.

    Line-based: a fence opens with a line starting with three backticks and an optional tag
    (```json, ```python) and closes with a bare fence line. A block left open at the end (an
    answer cut at the token limit) runs to the end of the text.
    """
    blocks: list[tuple[str, str]] = []
    tag: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if tag is None and stripped.startswith("```"):
            tag, body = stripped[3:].strip().lower(), []
        elif tag is not None and stripped == "```":
            blocks.append((tag, "\n".join(body)))
            tag = None
        elif tag is not None:
            body.append(line)
    if tag is not None:
        blocks.append((tag, "\n".join(body)))
    return blocks


def extract_source(text: str) -> tuple[str, str]:
    """(source, summary) of an answer.

    The source is the first fenced Python block that defines a hook (``def propose`` ...); else
    the longest Python block; else the whole answer. Blocks tagged otherwise (```json) are never
    taken. The summary is the answer's first line of prose.
    """
    python = [body for tag, body in fenced_blocks(text) if tag in _PYTHON_TAGS]
    with_hooks = [body for body in python if _HOOK_DEF.search(body)]
    source = with_hooks[0] if with_hooks else (max(python, key=len) if python else text)
    summary = next((line.strip() for line in text.splitlines() if line.strip() and not line.startswith("```")), "")
    return source.strip() + "\n", summary[:120]


def answer_problem(source: str, truncated: bool, tokens_out: int) -> dict[str, Any] | None:
    """A failed check report for an answer that cannot be judged as it is (cut or over-long), else None."""
    if truncated:
        return {"ok": False, "status": "truncated",
                "message": f"answer truncated at {tokens_out} tokens (the model's max_tokens): the source is "
                           f"incomplete; write a shorter mechanism (at most {MAX_MECHANISM_CHARS} characters)"}
    if len(source) > MAX_MECHANISM_CHARS:
        return {"ok": False, "status": "too_long",
                "message": f"source of {len(source)} characters > {MAX_MECHANISM_CHARS}, the limit: "
                           "write a shorter mechanism"}
    return None


def mechanism_name(source: str, generation: int, index: int) -> str:
    """A short name from the docstring's first words, e.g. ``llm-g0c1-tabu-list``."""
    m = re.search(r'"""\s*([^\n"]+)', source)
    words = re.findall(r"[a-z0-9]+", (m.group(1) if m else "").lower())[:3]
    return "-".join([f"llm-g{generation}c{index}", *words])


@dataclass
class LLMAuthor:
    """Writes one new mechanism per candidate through ``caller`` (see the module doc)."""

    caller: Caller
    check: Check
    repairs: int = 2
    name: str = "llm"
    brief: AuthorBrief | None = None  # the run as the author sees it; None: no generated reference

    def propose(self, ctx: AuthorContext, n: int) -> list[Candidate]:
        """Called once per generation before any candidate of it is judged, or (sequential candidates) once
        per candidate with ``ctx.start`` candidates of the generation already written and judged."""
        out: list[Candidate] = []
        seen = set(ctx.tried) | {ctx.incumbent.key}
        for index in range(ctx.start, ctx.start + n):
            cand = self._one(ctx, index, out)
            if cand is not None and cand.stack.key not in seen:
                seen.add(cand.stack.key)
                out.append(cand)
        return out

    def system_prompt(self, ctx: AuthorContext) -> str:
        """The system prompt: the fixed instructions, then the reference generated for this run."""
        system = prompt_texts()[0]
        if self.brief is None:
            return system
        return system + "\n\n" + reference_text(self.brief, ctx.analysis.example_trials, MAX_MECHANISM_CHARS)

    def _one(self, ctx: AuthorContext, index: int, made: list[Candidate]) -> Candidate | None:
        _, template, digest = prompt_texts()
        system = self.system_prompt(ctx)
        messages: list[tuple[str, str]] = [("user", self.user_prompt(ctx, index, made, template))]
        mech: Mechanism | None = None
        idea = ""
        for repair in range(self.repairs + 1):
            request = ChatRequest(system, tuple(messages), "author", f"g{ctx.generation}:c{index}:r{repair}",
                                  f"{PROMPT_VERSION}@{digest}")
            record = self.caller.ask(request)
            if record.error:
                return None  # no answer to judge; the failed call is in the transcript
            source, summary = extract_source(record.response)
            idea = idea or summary  # the idea is the first answer's, not a repair's
            problem = answer_problem(source, record.truncated, record.tokens_out)
            mech = Mechanism(mechanism_name(source, ctx.generation, index), source)
            taken = set(ctx.incumbent.mechanism_ids) | {m.id for c in made for m in c.new}
            key = Stack((*ctx.incumbent.mechanisms, mech), ctx.incumbent.search).key
            if problem is not None:
                report = problem
            elif mech.id in taken or key in ctx.tried:
                report = {"ok": False, "status": "duplicate",
                          "message": "this mechanism was already tried on this stack (or is on it); "
                                     "write a different one"}
            else:
                report = self.check(mech.source)
            if report.get("ok"):
                break
            if repair == self.repairs and problem is not None:
                return None  # never judge a cut or over-long source: the attempts are in the transcripts
            if repair < self.repairs:
                messages += [("assistant", record.response), ("user", _feedback(report))]
        if mech is None or mech.id in set(ctx.incumbent.mechanism_ids):
            return None
        stack = Stack((*ctx.incumbent.mechanisms, mech), ctx.incumbent.search)
        return Candidate(stack, f"llm: {mech.name}: {idea}"[:200], self.name, (mech,))

    def user_prompt(self, ctx: AuthorContext, index: int, made: list[Candidate], template: str) -> str:
        """The first user message of candidate ``index`` (0-based) of ``ctx.generation``."""
        incumbent = "\n\n".join(f"### {m.name}\n```python\n{m.source}```" for m in ctx.incumbent.mechanisms)
        lineage = [lineage_line(e) for e in ctx.lineage[-MAX_LINEAGE:]]
        lineage += [f"- g{ctx.generation} {c.operation}: written this generation, not judged yet" for c in made]
        return template.format(
            inner_source=module_source("bilevel.inner.loop"), contract_source=module_source("bilevel.mechanisms.contract"),
            search=json.dumps(ctx.incumbent.search.to_json(), sort_keys=True) + (
                "; used by the numeric fallback only, since the LLM proposes: see the base proposer section"
                if self.brief is not None and self.brief.model_proposes else ""),
            incumbent=incumbent or "(no mechanisms yet: the base proposer searches alone)",
            analysis="\n".join(f"- {line}" for line in ctx.analysis.lines()),
            library=", ".join(m.name for m in ctx.library) or "(empty)",
            lineage="\n".join(lineage) or "(nothing judged yet)", candidate=index + 1,
            generation=ctx.generation, max_chars=MAX_MECHANISM_CHARS)


def lineage_line(entry: dict[str, Any]) -> str:
    """One judged candidate as the author reads it: its idea and its exact outcome, with the reason.

    ``entry`` is an outer-loop lineage entry; ``outcome`` is ``kept``, ``passed, not adopted`` or
    ``rejected`` (entries without one, from older code, fall back on ``keep``)."""
    outcome = entry.get("outcome") or ("passed validation" if entry.get("keep") else "rejected")
    reason = str(entry["reason"])
    if outcome != "kept" and reason.startswith("kept: "):  # the judge's words for passing one stage, not a keep
        reason = "validation passed: " + reason.removeprefix("kept: ")
    label, sep, detail = outcome.partition(" (")
    return f"- g{entry['generation']} {entry['operation']}: {label.upper()}{sep}{detail} ({reason[:300]})"


def _feedback(report: dict[str, Any]) -> str:
    example = json.dumps(report.get("example"), sort_keys=True)[:MAX_FEEDBACK_CHARS] if report.get("example") else ""
    text = (f"{FEEDBACK_PREFIX}{report.get('status')}: {str(report.get('message', ''))[:MAX_FEEDBACK_CHARS]}"
            + (f"\nFailing example: {example}" if example else "")
            + "\nFix the mechanism and answer with the whole corrected source in one ```python block.")
    return text
