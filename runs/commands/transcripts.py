"""``bilevel transcripts RUN [--level author|inner] [--call N] [--json]``: a run's prompts and answers, readable.

Every model call the run recorded, in the order it was made, numbered from 1
over the whole run (the numbers stay the same when ``--level`` filters): a
header (call number, level, generation, model, tokens in and out, prompt-cache
writes and reads, dollars, whether the answer was cut at the token limit, the
error if the call failed), then each message of the prompt and the answer.
``--json`` prints the same as one JSON list for scripts.

The generation of an author call is in its context (``g2:c0:r1``). An inner
call is placed by the inner run that made it: the generation whose candidate
its stack was, else the first generation that started with that stack as the
incumbent; runs on the sealed test panel say ``final``. Calls recorded before
inner runs were named on their calls say ``-``.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from bilevel.judge.panels import SEED_BASE, SEED_SPAN
from bilevel.runs.commands import add_store_argument, open_existing
from bilevel.runs.spec import SpecError
from bilevel.runs.store import Store
from bilevel.runs.terminal import say, strict_json

NAME = "transcripts"
HELP = "a run's model calls: prompts and answers, with level, generation, model, tokens and truncation"
PANEL_OF_SEED = {base // SEED_SPAN: name for name, base in SEED_BASE.items()}
_GEN = re.compile(r"^g(\d+):")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN")
    parser.add_argument("--level", choices=("author", "inner"), help="only the author's or the proposer's calls")
    parser.add_argument("--call", type=int, metavar="N", help="only call N (as numbered in the full listing)")
    parser.add_argument("--json", action="store_true", help="one JSON list of the calls, for scripts")
    add_store_argument(parser)


def _generations(store: Store, run_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """(stack key -> the generation it was a candidate in, stack key -> first generation it was incumbent in)."""
    candidate: dict[str, int] = {}
    for c in store.candidates(run_id):
        candidate.setdefault(str(c["stack_key"]), int(c["generation"]))
    incumbent: dict[str, int] = {}
    for e in store.events(run_id, "generation_start"):
        incumbent.setdefault(str(e.get("incumbent", "")), int(e.get("generation", 0)))
    return candidate, incumbent


def _where(call: dict[str, Any], candidate: dict[str, int], incumbent: dict[str, int]) -> tuple[str, str]:
    """(generation, where the call was made) of one recorded call."""
    if call.get("level") == "author":
        m = _GEN.match(str(call.get("context", "")))
        return (f"g{m.group(1)}" if m else "-"), f"author {call.get('context', '')}"
    ev = call.get("evaluation")
    if not isinstance(ev, dict):
        return "-", str(call.get("context", ""))
    panel = PANEL_OF_SEED.get(int(ev["seed"]) // SEED_SPAN, "?")
    stack = str(ev["stack"])
    where = f"{panel} panel, {ev['instance']} seed {ev['seed']}, stack {stack[:8]}"
    if panel == "test":
        return "final", where
    gen = candidate.get(stack, incumbent.get(stack))
    return ("-" if gen is None else f"g{gen}"), where


def transcript(store: Store, run_id: str, level: str | None = None, call: int | None = None) -> list[dict[str, Any]]:
    """The run's calls as plain dicts (``call``: 1-based number over the whole run), filtered."""
    store.run(run_id)  # an unknown run is refused naming the recent ones
    calls = store.llm_calls(run_id)
    if call is not None and not 1 <= call <= len(calls):
        raise SpecError(f"--call {call}: run {run_id} has {len(calls)} recorded model calls (1..{len(calls)})"
                        if calls else f"--call {call}: run {run_id} has no recorded model calls")
    candidate, incumbent = _generations(store, run_id)
    out = []
    for n, c in enumerate(calls, 1):
        if (call is not None and n != call) or (level is not None and c.get("level") != level):
            continue
        generation, where = _where(c, candidate, incumbent)
        out.append({"call": n, "level": c.get("level", ""), "generation": generation, "where": where,
                    "context": c.get("context", ""), "model": c.get("model", ""),
                    "tokens_in": int(c.get("tokens_in", 0)), "tokens_out": int(c.get("tokens_out", 0)),
                    "cache_write_tokens": int(c.get("cache_write_tokens", 0)),
                    "cache_read_tokens": int(c.get("cache_read_tokens", 0)),
                    "cost_usd": float(c.get("cost_usd", 0.0)), "truncated": bool(c.get("truncated", False)),
                    "max_tokens": (c.get("settings") or {}).get("max_tokens"), "error": c.get("error", ""),
                    "outcome": c.get("outcome", ""), "prompt_version": c.get("prompt_version", ""),
                    "system": c.get("system", ""), "messages": [list(m) for m in c.get("messages", [])],
                    "response": c.get("response", "")})
    return out


def _text(lines: str) -> None:
    for line in lines.splitlines() or [""]:
        say(line)


def _show(rec: dict[str, Any]) -> None:
    cut = f"yes (answer truncated at {rec['tokens_out']} tokens)" if rec["truncated"] else "no"
    cache = (f", cache {rec['cache_write_tokens']} written / {rec['cache_read_tokens']} read"
             if rec["cache_write_tokens"] or rec["cache_read_tokens"] else "")
    say(f"=== call {rec['call']} | {rec['level']} | {rec['generation']} | {rec['model']} | "
        f"{rec['tokens_in']} tokens in, {rec['tokens_out']} out{cache} | ${rec['cost_usd']:.4f} | truncated: {cut}")
    say(f"where: {rec['where']} ({rec['context']}); prompt {rec['prompt_version']}")
    if rec["error"]:
        say(f"error: {rec['error']}")
    if rec["outcome"]:
        say(f"outcome: {rec['outcome']}")
    say("--- system ---")
    _text(rec["system"])
    for role, content in rec["messages"]:
        say(f"--- {role} ---")
        _text(content)
    say("--- answer ---")
    _text(rec["response"] if not rec["error"] else "(no answer)")
    say("")


def run(args: argparse.Namespace) -> int:
    store = open_existing(args.store)
    records = transcript(store, args.run_id, args.level, args.call)
    if args.json:
        print(strict_json(records))
        return 0
    if not records:
        say(f"run {args.run_id}: no recorded model calls" + (f" at level {args.level}" if args.level else "")
            + " (an offline run, or a model that was never asked)")
        return 0
    for rec in records:
        _show(rec)
    return 0
