"""What the inner loop found: the best config per instance (``bilevel best``) and every trial as CSV
(``bilevel export RUN --trials FILE.csv``). Read-only views of the run store."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from bilevel.judge.stack import Stack
from bilevel.runs.store import Store


def panel_of(manifest: dict[str, Any]) -> dict[tuple[str, int], tuple[str, str]]:
    """(instance, seed) -> (panel name, group), from the run's manifest."""
    out: dict[tuple[str, int], tuple[str, str]] = {}
    panels = manifest.get("panels") or {}
    for name in ("search", "validation", "test"):
        for e in panels.get(name, []):
            out[(str(e["instance"]), int(e["seed"]))] = (name, str(e.get("group", "")))
    return out


def best_rows(store: Store, run_id: str, stack: Stack) -> list[dict[str, Any]]:
    """Per instance (in panel order), the inner run of ``stack`` with the best (lowest) judge score and its
    best trial's config; only inner runs the run evaluated (search, validation, confirmation, test panels)."""
    panels = panel_of(store.run(run_id).manifest)
    best: dict[str, dict[str, Any]] = {}
    for ev in store.evaluations(run_id):
        if ev["stack_key"] != stack.key:
            continue
        r = ev["result"]
        panel, group = panels.get((ev["instance"], int(ev["seed"])), ("confirmation", r.get("group", "")))
        row = {"instance": ev["instance"], "group": group, "panel": panel, "seed": int(ev["seed"]),
               "score": float(r["primary"]), "config": r.get("best_config"),
               "failed_trials": int(r.get("failed_trials", 0)), "trials": int(r.get("n_trials", 0))}
        old = best.get(ev["instance"])
        if old is None or (row["score"], row["seed"]) < (old["score"], old["seed"]):
            best[ev["instance"]] = row
    order = {key[0]: i for i, key in enumerate(panels)}
    return sorted(best.values(), key=lambda r: (order.get(r["instance"], len(order)), r["instance"]))


def best_lines(store: Store, run_id: str, stacks: list[tuple[str, Stack]], score_text: str) -> list[str]:
    """The text of ``bilevel best``: one block per stack, one line per instance."""
    lines = [f"run: {run_id}", f"score: {score_text}"]
    for label, stack in stacks:
        lines.append("")
        lines.append(f"{label}: {stack.describe()} [{stack.key[:8]}]")
        rows = best_rows(store, run_id, stack)
        if not rows:
            lines.append("  (no inner run of this stack is recorded)")
        lines.append("  " + "\t".join(("panel", "instance", "group", "seed", "score", "config")))
        for r in rows:
            config = ("(not recorded: the run predates best configs in the store)" if r["config"] is None
                      else json.dumps(r["config"], sort_keys=True))
            lines.append("  " + "\t".join((r["panel"], r["instance"], r["group"], str(r["seed"]),
                                           f"{r['score']:.6g}", config)))
    return lines


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """Parameters as columns; a simplex (dict of weights) as ``name.domain`` columns."""
    out: dict[str, Any] = {}
    for name, value in config.items():
        if isinstance(value, dict):
            for part, weight in value.items():
                out[f"{name}.{part}"] = weight
        else:
            out[name] = value
    return out


BASE_COLUMNS = ("stack", "stack_mechanisms", "panel", "instance", "group", "seed", "index")
TAIL_COLUMNS = ("score", "kept", "source", "changed_by", "error")


def _trials_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    """An evaluation's trials as dicts (index, config, score, kept, source, changed ids, error): from its
    trace when one was kept, else from its short trial rows; empty for runs made before either."""
    trace = result.get("trace")
    if trace:
        return [{"index": t["index"], "config": t.get("config") or {}, "score": t.get("score"),
                 "kept": t.get("kept"), "source": t.get("source", ""), "error": t.get("error", ""),
                 "changed": sorted({h["mechanism"] for h in t.get("hooks", []) if h.get("changed")})}
                for t in trace["trials"]]
    return [{"index": i, "config": r[0] or {}, "score": r[1], "kept": r[2], "source": r[3], "changed": r[4],
             "error": r[5]} for i, r in enumerate(result.get("trial_rows") or [])]


def write_trials_csv(store: Store, run_id: str, path: Path) -> int:
    """Every recorded trial of the run (every inner run of every stack on every panel) as one CSV row;
    returns the number of rows. Runs recorded before trials were kept per inner run export only the
    traces they kept (the search panel's)."""
    panels = panel_of(store.run(run_id).manifest)
    names = {m["id"]: m["name"] for m in store.mechanisms(run_id)}
    stacks = {c["stack_key"]: c["stack"] for c in store.candidates(run_id)}
    rows: list[dict[str, Any]] = []
    params: list[str] = []
    for ev in store.evaluations(run_id):
        result = ev["result"]
        panel, group = panels.get((ev["instance"], int(ev["seed"])), ("confirmation", result.get("group", "")))
        mechs = "+".join(m["name"] for m in stacks.get(ev["stack_key"], {}).get("mechanisms", []))
        for t in _trials_of(result):
            flat = _flat(t["config"])
            params += [p for p in flat if p not in params]
            score = t["score"]
            rows.append({"stack": ev["stack_key"], "stack_mechanisms": mechs or "(none)", "panel": panel,
                         "instance": ev["instance"], "group": group, "seed": ev["seed"], "index": t["index"],
                         **flat, "score": "" if score is None or not math.isfinite(score) else repr(float(score)),
                         "kept": int(bool(t["kept"])), "source": t["source"],
                         "changed_by": "+".join(names.get(m, m) for m in t["changed"]), "error": t["error"]})
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*BASE_COLUMNS, *params, *TAIL_COLUMNS], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
