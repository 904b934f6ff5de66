"""Read-only views of a run: the lineage tree, results.tsv, the summary of a finished run."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from bilevel.runs.store import Store

TSV_COLUMNS = ("id", "parent", "generation", "operation", "author", "mechanisms", "verdict", "stage",
               "val_improvement", "val_ci_low", "val_ci_high", "val_ci_unit", "val_pairs",
               "test_improvement", "test_ci_low", "test_ci_high", "test_ci_unit", "test_pairs", "reason")
NUMBER_COLUMNS = {"val_improvement", "val_ci_low", "val_ci_high", "test_improvement", "test_ci_low", "test_ci_high"}


def _num(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.6g}"


def candidate_rows(store: Store, run_id: str, with_test: bool = False) -> list[dict[str, Any]]:
    """One row per judged candidate: what it was, what the judge said, with the numbers.

    ``val_*`` are the verdict's (improvement = incumbent - candidate on the stage it reached); ``test_*`` the
    candidate against the baseline on the sealed test panel, where the store already holds both on every
    test pair (the final stack always; others once ``compare`` or ``report`` computed them), else empty."""
    verdicts = {(v["generation"], v["index"]): v for v in store.verdicts(run_id)}
    tests = test_figures(store, run_id) if with_test else {}
    rows = []
    for c in store.candidates(run_id):
        v = verdicts.get((c["generation"], c["index"]))
        t = tests.get(c["stack_key"], {})
        mechs = "+".join(m["name"] for m in c.get("stack", {}).get("mechanisms", [])) or "(none)"
        rows.append({"id": c["stack_key"], "parent": c["parent"], "generation": c["generation"],
                     "operation": c["operation"], "author": c["author"], "mechanisms": mechs,
                     "verdict": ("kept" if v["keep"] else "rejected") if v else "pending",
                     "stage": v["stage"] if v else "",
                     "val_improvement": v["mean_improvement"] if v else None,
                     "val_ci_low": v["ci_low"] if v else None, "val_ci_high": v["ci_high"] if v else None,
                     "val_ci_unit": v.get("ci_unit", "pair") if v else "", "val_pairs": v["n_pairs"] if v else "",
                     "test_improvement": t.get("mean"), "test_ci_low": t.get("low"), "test_ci_high": t.get("high"),
                     "test_ci_unit": t.get("unit", ""), "test_pairs": t.get("pairs", ""),
                     "reason": v["reason"] if v else "not judged yet"})
    return rows


def test_figures(store: Store, run_id: str) -> dict[str, dict[str, Any]]:
    """Stack key -> improvement over the baseline on the test panel with its cluster interval, for every stack
    whose inner runs on every test pair are in the store (nothing is computed here)."""
    from bilevel.judge.stats import hierarchical_bootstrap_ci

    row = store.run(run_id)
    test = [(str(e["instance"]), int(e["seed"]), str(e.get("group", ""))) for e in row.manifest["panels"]["test"]]
    if not test:
        return {}
    primary: dict[str, dict[tuple[str, int], float]] = defaultdict(dict)
    wanted = {(i, s) for i, s, _ in test}
    for ev in store.evaluations(run_id):
        if (ev["instance"], int(ev["seed"])) in wanted:
            primary[ev["stack_key"]][(ev["instance"], int(ev["seed"]))] = float(ev["result"]["primary"])
    baseline = _baseline_key(store, run_id)
    base = primary.get(baseline, {})
    if len(base) < len(test):
        return {}
    judge = row.spec.get("judge", {})
    out: dict[str, dict[str, Any]] = {}
    for key, scores in primary.items():
        if len(scores) < len(test):
            continue
        diffs = [base[(i, s)] - scores[(i, s)] for i, s, _ in test]
        ci = hierarchical_bootstrap_ci(diffs, [g for _, _, g in test], [i for i, _, _ in test],
                                       float(judge.get("confidence", 0.95)), int(judge.get("n_boot", 2000)), seed=0)
        out[key] = {"mean": ci.mean, "low": ci.low, "high": ci.high, "unit": ci.unit, "pairs": len(diffs)}
    return out


def _baseline_key(store: Store, run_id: str) -> str:
    cands = store.candidates(run_id)
    roots = [c["parent"] for c in cands if c["generation"] == 0]
    if roots:
        return str(roots[0])
    from bilevel.runs.history import load_history

    return load_history(store, run_id).baseline.key


def results_tsv(store: Store, run_id: str) -> str:
    """``results.tsv``: a header and one tab-separated row per evaluated candidate."""
    lines = ["\t".join(TSV_COLUMNS)]
    for r in candidate_rows(store, run_id, with_test=True):
        cells = [_num(r[k]) if k in NUMBER_COLUMNS else str(r[k]) for k in TSV_COLUMNS]
        lines.append("\t".join(c.replace("\t", " ").replace("\n", " ") for c in cells))
    return "\n".join(lines) + "\n"


def adopted_stacks(store: Store, run_id: str) -> set[tuple[int, str]]:
    """(generation, stack key) of each generation's adopted winner, from the generation-end events."""
    return {(int(e["generation"]), str(e["incumbent"]))
            for e in store.events(run_id, "generation_end") if e.get("kept") is not None}


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
    adopted = adopted_stacks(store, run_id)

    def walk(key: str, prefix: str) -> None:
        kids = children.get(key, [])
        for i, r in enumerate(kids):
            last = i == len(kids) - 1
            reason = r["reason"]
            if r["verdict"] == "kept":
                reason = ("KEPT " if (r["generation"], r["id"]) in adopted
                          else "PASSED, not adopted (a better candidate of its generation was kept): ")
                reason += r["reason"].removeprefix("kept: ")
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
