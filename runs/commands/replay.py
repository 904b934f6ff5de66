"""``bilevel replay RUN``: re-run a whole run from its recorded model calls, without any model.

The run's calls (both levels) are exported to a transcript file beside the
store; a new run is made with the same spec and the ``replay`` backend
reading that file, and executed. Its verdicts and final scores are then
compared with the original's, field by field. When the code changed, the
replay either stops where a request has no recorded answer (and says which
call and how its prompt differs) or finishes and lists every verdict and
score that differs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bilevel.inner.chat import ReplayDivergence
from bilevel.judge.manifest import Manifest, verify_manifest
from bilevel.runs.commands import add_store_argument, open_existing, replay_stack
from bilevel.runs.driver import create_run, effective_spec, execute, judge_setup
from bilevel.runs.progress import Progress
from bilevel.runs.spec import RunSpec
from bilevel.runs.store import Store
from bilevel.runs.user_library import recorded_library
from bilevel.runs.views import last_summary

NAME = "replay"
HELP = ("re-run a whole run from its record (no model) and check verdicts and scores are identical; "
        "with --stack, replay a discovered stack on new instances and seeds")

VERDICT_FIELDS = ("stack_key", "keep", "stage", "mean_improvement", "ci_low", "ci_high", "reason")
SUMMARY_FIELDS = ("generations", "candidates", "kept", "stack", "val_improvement", "val_ci", "val_ci_unit",
                  "test_improvement", "test_ci", "test_ci_unit", "stopped")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id")
    add_store_argument(p)
    replay_stack.add_stack_arguments(p)


def export_transcripts(store: Store, run_id: str, path: Path) -> int:
    """Write the run's call records to ``path`` (JSON list); returns how many."""
    calls = store.llm_calls(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(calls, sort_keys=True), encoding="utf-8")
    return len(calls)


def replay_spec(spec: RunSpec, transcripts: Path) -> RunSpec:
    """The original spec with the replay backend as the model of every level."""
    data = spec.to_json()
    if data["llm"]["model"]:
        data["llm"]["model"] = f"replay:{transcripts.resolve()}"
        data["llm"]["author_model"] = ""
    return RunSpec(data)


def differences(store: Store, original: str, replayed: str) -> list[str]:
    """Every verdict and summary field that differs between two runs, in words (empty: identical)."""
    out: list[str] = []
    old = {(v["generation"], v["index"]): v for v in store.verdicts(original)}
    new = {(v["generation"], v["index"]): v for v in store.verdicts(replayed)}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        where = f"verdict g{key[0]} candidate {key[1]}"
        if a is None or b is None:
            out.append(f"{where}: only in the {'replay' if a is None else 'original'}")
            continue
        out += [f"{where}: {f} was {a.get(f)!r}, replay gives {b.get(f)!r}" for f in VERDICT_FIELDS
                if _differ(a.get(f), b.get(f))]
    sa, sb = last_summary(store, original) or {}, last_summary(store, replayed) or {}
    out += [f"summary {f}: was {sa.get(f)!r}, replay gives {sb.get(f)!r}" for f in SUMMARY_FIELDS
            if sa.get(f) != sb.get(f)]
    return out


def _differ(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return False  # both NaN
    return bool(a != b)


def run(args: argparse.Namespace) -> int:
    if replay_stack.wants_stack_replay(args):
        return replay_stack.run(args)
    store = open_existing(args.store)
    store.run(args.run_id)
    transcripts = Path(args.store) / "transcripts" / f"{args.run_id}.json"
    n = export_transcripts(store, args.run_id, transcripts)
    spec = replay_spec(effective_spec(store, args.run_id), transcripts)
    # a replay under another judge proves nothing: refuse, naming what changed (ManifestMismatch)
    verify_manifest(Manifest.from_json(store.run(args.run_id).manifest), judge_setup(spec).manifest)
    replay_id = create_run(store, spec, library=recorded_library(store, args.run_id))
    store.recorder(replay_id).record_event("replay_of", "replay_of",
                                           {"original": args.run_id, "transcripts": str(transcripts), "calls": n})
    print(f"run: {replay_id}")
    print(f"replaying: {args.run_id} ({n} recorded calls, no model)", flush=True)
    try:
        with Progress() as progress:
            execute(store, replay_id, progress=progress.stage, on_eval=progress.evaluation)
    except ReplayDivergence as exc:
        print(f"replay: diverged\n{exc}")
        return 1
    diffs = differences(store, args.run_id, replay_id)
    if diffs:
        print(f"replay: diverged ({len(diffs)} differences)")
        for line in diffs:
            print("  " + line)
        return 1
    print(f"replay: identical ({len(store.verdicts(replay_id))} verdicts and the final scores)")
    return 0
