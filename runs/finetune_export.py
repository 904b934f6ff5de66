"""A run's judged history as training data (``bilevel export RUN... --finetune DIR``, issue 16).

From one or more runs with a model author (or proposer), DIR gets:

- ``train.jsonl`` / ``valid.jsonl``: supervised chat examples in the format
  mlx-lm's LoRA trainer reads (``{"messages": [...]}`` per line): the author
  conversation as sent (system, user, earlier drafts and the host's repair
  notes) and the mechanism answer whose candidate the judge passed
  (``keep`` in its verdict). Split by run when there are several (the last
  run is ``valid``), else by generation (the last generation with examples is
  ``valid``); never by line, so one prompt never sits on both sides. With a
  single unit there is no ``valid.jsonl`` (mlx-lm then trains without one).
- ``preferences.jsonl``: ``{"prompt": [...], "chosen": [...], "rejected": [...],
  "margin": ...}`` (the conversational chosen/rejected form). Two kinds: a
  draft the host refused (compile, policy or conformance) against the repaired
  answer of the same conversation (``kind: "repair"``, margin null), and a
  judged-and-rejected candidate against a passed one of the same generation
  (``kind: "verdict"``; the prompts differ only in the candidate number; the
  margin is the difference of their validation mean improvements).
- ``proposer.jsonl``: the inner proposer's accepted answer against the answers
  it rejected in the same trial (same conversation), from search, validation
  and confirmation inner runs only.
- ``manifest.json``: the runs, their judge manifest hashes, the generations
  and verdicts that went in, and the counts.

Labels come only from verdicts (validation and confirmation) and the host's
checks: nothing from the sealed test panel. Inner-run conversations are
matched to their panel by their context (a hash of the stack and seed) and
those of test-panel runs are left out; any example whose text names a test
instance is dropped too, and the manifest counts both.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bilevel.runs.driver import judge_setup
from bilevel.runs.history import load_history
from bilevel.runs.store import Store, StoreError

Message = dict[str, str]


@dataclass
class Collected:
    """Examples of one export, before they are written."""

    sft: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (split unit, example)
    preferences: list[dict[str, Any]] = field(default_factory=list)
    proposer: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    dropped_test_text: int = 0
    skipped_test_calls: int = 0


def conversation(call: dict[str, Any]) -> list[Message]:
    """The messages of a recorded call as sent: the system prompt, then each (role, text) turn."""
    out = [{"role": "system", "content": str(call.get("system", ""))}] if call.get("system") else []
    out += [{"role": str(role), "content": str(text)} for role, text in call.get("messages", [])]
    return out


def _author_calls(store: Store, run_id: str) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """The author's calls per (generation, candidate), in repair order (context ``g{g}:c{c}:r{r}``)."""
    by: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for call in store.llm_calls(run_id, "author"):
        m = re.fullmatch(r"g(\d+):c(\d+):r(\d+)", str(call.get("context", "")))
        if m and not call.get("error") and call.get("response"):
            by[(int(m.group(1)), int(m.group(2)))].append({**call, "_repair": int(m.group(3))})
    for calls in by.values():
        calls.sort(key=lambda c: c["_repair"])
    return by


def _context_hash(mechanism_ids: Sequence[str], search: dict[str, Any], seed: int) -> str:
    """The inner loop's conversation context for a stack and seed (``inner.loop.InnerLoop``)."""
    return hashlib.sha256(json.dumps([list(mechanism_ids), search, seed], sort_keys=True).encode()).hexdigest()[:16]


def _test_contexts(store: Store, run_id: str) -> tuple[set[str], set[str]]:
    """(contexts of inner runs on the test panel, instance keys of the test panel)."""
    history = load_history(store, run_id)
    panels = judge_setup(history.spec).panels
    test_seeds = {e.seed for e in panels.test}
    stacks = [history.baseline, *(g.incumbent for g in history.generations)]
    stacks += [history.candidate_stack(store, c["stack_key"])[0] for c in history.candidates]
    contexts = {_context_hash(s.mechanism_ids, s.search.to_json(), seed) for s in stacks for seed in test_seeds}
    return contexts, {e.instance for e in panels.test}


def _mentions(example: dict[str, Any], names: set[str]) -> bool:
    text = json.dumps(example)
    return any(re.search(rf"{re.escape(n)}(?![\w-])", text) for n in names)


def collect(store: Store, run_ids: Sequence[str]) -> Collected:
    """Read every run's author and proposer conversations with their labels (called once per export)."""
    out = Collected()
    for run_id in run_ids:
        history = load_history(store, run_id)
        test_ctx, test_names = _test_contexts(store, run_id)
        verdicts = {(int(v["generation"]), int(v["index"])): v for v in history.verdicts}
        kept = {int(g.index): g.kept for g in history.generations}
        calls = _author_calls(store, run_id)
        used: list[dict[str, Any]] = []
        passed: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
        failed: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
        for (gen, idx), chain in sorted(calls.items()):
            verdict = verdicts.get((gen, idx))
            if verdict is None:
                continue
            final = chain[-1]
            label = {"run": run_id, "generation": gen, "candidate": idx, "stack_key": verdict["stack_key"],
                     "keep": bool(verdict["keep"]), "stage": verdict["stage"],
                     "kept": kept.get(gen) == verdict["stack_key"],
                     "val_mean_improvement": verdict.get("mean_improvement")}
            used.append(label)
            repaired_ok = verdict["stage"] != "conformance"  # the last answer passed the host's checks
            for draft in chain[:-1] if repaired_ok else []:
                out.preferences.append({"prompt": conversation(draft), "chosen": _answer(final),
                                        "rejected": _answer(draft), "margin": None, "kind": "repair", **label})
            (passed if verdict["keep"] else failed)[gen].append((final, label))
            if verdict["keep"]:
                unit = run_id if len(run_ids) > 1 else f"{run_id}/g{gen}"
                out.sft.append((unit, {"messages": conversation(final) + _answer(final)}))
        for gen, winners in passed.items():
            for (good, g_label) in winners:
                for (bad, b_label) in failed.get(gen, []):
                    margin = _margin(g_label, b_label)
                    out.preferences.append({"prompt": conversation(good), "chosen": _answer(good),
                                            "rejected": _answer(bad), "margin": margin, "kind": "verdict",
                                            **g_label, "rejected_candidate": b_label["candidate"]})
        out.proposer += _proposer_pairs(store, run_id, test_ctx, out)
        before = len(out.sft) + len(out.preferences) + len(out.proposer)
        out.sft = [(u, e) for u, e in out.sft if not _mentions(e, test_names)]
        out.preferences = [p for p in out.preferences if not _mentions(p, test_names)]
        out.proposer = [p for p in out.proposer if not _mentions(p, test_names)]
        out.dropped_test_text += before - len(out.sft) - len(out.preferences) - len(out.proposer)
        out.runs.append({"run": run_id, "manifest_hash": history.manifest_hash,
                         "generations": [g.index for g in history.generations], "verdicts": used})
    return out


def _answer(call: dict[str, Any]) -> list[Message]:
    return [{"role": "assistant", "content": str(call["response"])}]


def _margin(good: dict[str, Any], bad: dict[str, Any]) -> float | None:
    a, b = good.get("val_mean_improvement"), bad.get("val_mean_improvement")
    if isinstance(a, int | float) and isinstance(b, int | float) and a == a and b == b:
        return float(a) - float(b)
    return None


def _proposer_pairs(store: Store, run_id: str, test_ctx: set[str], out: Collected) -> list[dict[str, Any]]:
    """Accepted against rejected proposer answers of one trial (context ``run:{hash}:t{t}:...``)."""
    trials: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in store.llm_calls(run_id, "inner"):
        m = re.match(r"run:([0-9a-f]+):t(\d+):", str(call.get("context", "")))
        if not m or call.get("error"):
            continue
        if m.group(1) in test_ctx:
            out.skipped_test_calls += 1
            continue
        trials[f"{m.group(1)}:{m.group(2)}"].append(call)
    pairs = []
    for key, calls in trials.items():
        good = [c for c in calls if str(c.get("outcome", "")).startswith(("accepted", "repaired"))]
        bad = [c for c in calls if str(c.get("outcome", "")).startswith("rejected")]
        if good and bad:
            chosen = good[-1]
            for rejected in bad:
                pairs.append({"prompt": conversation(rejected), "chosen": _answer(chosen),
                              "rejected": _answer(rejected), "reason": rejected["outcome"], "run": run_id,
                              "trial": key})
    return pairs


def write_finetune(store: Store, run_ids: Sequence[str], directory: Path) -> list[str]:
    """Write the four files into ``directory``; one line per file written."""
    if not run_ids:
        raise StoreError("--finetune needs at least one run")
    if len(set(run_ids)) != len(run_ids):
        raise StoreError(f"--finetune: a run is given twice in {list(run_ids)}; give each run once")
    for run_id in run_ids:
        store.run(run_id)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise StoreError(f"--finetune {directory} is a file; give a directory")
    data = collect(store, run_ids)
    units = list(dict.fromkeys(u for u, _ in data.sft))
    valid_units = set(units[-1:]) if len(units) > 1 else set()
    train = [e for u, e in data.sft if u not in valid_units]
    valid = [e for u, e in data.sft if u in valid_units]
    directory.mkdir(parents=True, exist_ok=True)
    files = {"train.jsonl": train, "valid.jsonl": valid, "preferences.jsonl": data.preferences,
             "proposer.jsonl": data.proposer}
    for name, rows in files.items():
        path = directory / name
        if not rows and name == "valid.jsonl":  # mlx-lm reads an empty file as a broken set, a missing one as none
            path.unlink(missing_ok=True)
            continue
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    counts = {name.removesuffix(".jsonl"): len(rows) for name, rows in files.items()}
    manifest = {"format": "bilevel-finetune-v1", "runs": data.runs, "counts": counts,
                "split": {"unit": "run" if len(run_ids) > 1 else "generation", "valid": sorted(valid_units)},
                "labels": "verdicts on validation/confirmation panels and host checks; no sealed-test data",
                "excluded": {"test_panel_proposer_calls": data.skipped_test_calls,
                             "examples_naming_test_instances": data.dropped_test_text}}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    lines = [f"wrote {directory}/ (fine-tuning data from {len(run_ids)} run(s): "
             + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"]
    if not train:
        lines.append("note: no passed author answer to learn from (train.jsonl is empty): "
                     "export runs whose author is a model and whose judge passed candidates")
    return lines
