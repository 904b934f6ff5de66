"""Read-only views of a run: the lineage tree, results.tsv, the summary of a finished run."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from bilevel.runs.store import Store

TSV_COLUMNS = ("id", "parent", "generation", "operation", "author", "score", "ci_low", "ci_high", "verdict",
               "stage", "reason")


def _num(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.6g}"


def candidate_rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    """One row per judged candidate: what it was, what the judge said, with the numbers."""
    verdicts = {(v["generation"], v["index"]): v for v in store.verdicts(run_id)}
    rows = []
    for c in store.candidates(run_id):
        v = verdicts.get((c["generation"], c["index"]))
        rows.append({"id": c["stack_key"], "parent": c["parent"], "generation": c["generation"],
                     "operation": c["operation"], "author": c["author"],
                     "score": v["mean_improvement"] if v else None,
                     "ci_low": v["ci_low"] if v else None, "ci_high": v["ci_high"] if v else None,
                     "verdict": ("kept" if v["keep"] else "rejected") if v else "pending",
                     "stage": v["stage"] if v else "", "reason": v["reason"] if v else "not judged yet"})
    return rows


def results_tsv(store: Store, run_id: str) -> str:
    """``results.tsv``: a header and one tab-separated row per evaluated candidate."""
    lines = ["\t".join(TSV_COLUMNS)]
    for r in candidate_rows(store, run_id):
        cells = [_num(r[k]) if k in ("score", "ci_low", "ci_high") else str(r[k]) for k in TSV_COLUMNS]
        lines.append("\t".join(c.replace("\t", " ").replace("\n", " ") for c in cells))
    return "\n".join(lines) + "\n"


def lineage_lines(store: Store, run_id: str) -> list[str]:
    """The lineage as a tree: each candidate under the stack it was derived from, with its verdict."""
    rows = candidate_rows(store, run_id)
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        children[r["parent"]].append(r)
    roots = [r["parent"] for r in rows if r["generation"] == 0][:1]
    if not roots:
        return ["(no candidates yet)"]
    lines = [f"baseline [{roots[0][:8]}]"]

    def walk(key: str, prefix: str) -> None:
        kids = children.get(key, [])
        for i, r in enumerate(kids):
            last = i == len(kids) - 1
            reason = r["reason"] if r["verdict"] != "kept" else "KEPT " + r["reason"].removeprefix("kept: ")
            lines.append(f"{prefix}{'`-- ' if last else '|-- '}g{r['generation']} [{r['id'][:8]}] "
                         f"{r['operation']} -> {reason}")
            if r["verdict"] == "kept":
                walk(r["id"], prefix + ("    " if last else "|   "))

    walk(roots[0], "")
    return lines


def sandbox_layers(store: Store, run_id: str) -> dict[tuple[str, ...], int]:
    """How many stored evaluations ran under each set of active sandbox layers (those that ran mechanisms)."""
    counts: dict[tuple[str, ...], int] = {}
    for ev in store.evaluations(run_id):
        layers = tuple(str(x) for x in ev["result"].get("sandbox_layers") or ())
        if layers:
            counts[layers] = counts.get(layers, 0) + 1
    return counts


def sandbox_layers_line(store: Store, run_id: str) -> str:
    """The sandbox layers of a run in one line, for ``bilevel show`` (several sets if workers differed)."""
    counts = sandbox_layers(store, run_id)
    if not counts:
        return "none recorded (no evaluation ran a mechanism yet)"
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return "; ".join(f"{', '.join(layers)} ({n} evaluations)" for layers, n in ranked)


def last_summary(store: Store, run_id: str) -> dict[str, Any] | None:
    ends = store.events(run_id, "run_end")
    if not ends:
        return None
    return {k: v for k, v in ends[-1].items() if k not in ("key", "kind", "at")}
