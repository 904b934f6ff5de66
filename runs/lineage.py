"""The lineage of a run: every judged stack as a node under the stack it was derived from.

Each node carries its author, generation, verdict, reason and the numbers
behind the verdict; :func:`stack_diff` gives a node's source diff against
its parent stack (what ``bilevel lineage RUN --diff ID`` prints).
"""

from __future__ import annotations

import difflib
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bilevel.judge.stack import Stack
from bilevel.runs.author_attempts import author_attempts, candidate_of, unjudged_lines
from bilevel.runs.history import RunHistory, load_history, stack_from_json
from bilevel.runs.store import Store
from bilevel.runs.views import adopted_stacks


@dataclass(frozen=True)
class Node:
    """One judged candidate stack."""

    key: str
    parent: str
    generation: int
    index: int
    author: str
    operation: str
    verdict: str  # kept | rejected | pending
    stage: str
    reason: str
    mean: float
    ci_low: float
    ci_high: float
    n_pairs: int
    changed_share: float
    describe: str
    adopted: bool = False  # the generation's new incumbent (the best of the candidates the judge passed)

    @property
    def mark(self) -> str:
        if self.verdict != "kept":
            return self.verdict
        return "KEPT" if self.adopted else "passed (a better candidate was kept)"

    def numbers(self) -> str:
        """The verdict's numbers in one line (empty when it was never judged on pairs)."""
        if self.n_pairs == 0 or math.isnan(self.mean):
            return f"no paired evidence (stage {self.stage or '-'})"
        return (f"mean {self.mean:+.4f} CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}] n={self.n_pairs} "
                f"changed={self.changed_share:.0%} stage={self.stage}")


def nodes(store: Store, history: RunHistory) -> list[Node]:
    """The run's judged candidates as lineage nodes, in the order they were judged."""
    verdicts = {(v["generation"], v["index"]): v for v in history.verdicts}
    adopted = adopted_stacks(store, history.run_id)
    out = []
    for c in history.candidates:
        v = verdicts.get((c["generation"], c["index"]))
        stack = stack_from_json(store, history.run_id, c["stack"])
        nan = math.nan
        out.append(Node(
            key=c["stack_key"], parent=c["parent"], generation=c["generation"], index=c["index"],
            author=c["author"], operation=c["operation"],
            verdict=("kept" if v["keep"] else "rejected") if v else "pending",
            stage=v["stage"] if v else "", reason=v["reason"] if v else "not judged yet",
            mean=float(v["mean_improvement"]) if v else nan, ci_low=float(v["ci_low"]) if v else nan,
            ci_high=float(v["ci_high"]) if v else nan, n_pairs=int(v["n_pairs"]) if v else 0,
            changed_share=float(v["changed_share"]) if v else 0.0, describe=stack.describe(),
            adopted=bool(v and v["keep"]) and (c["generation"], c["stack_key"]) in adopted))
    return out


def tree_lines(store: Store, run_id: str) -> list[str]:
    """The lineage as an indented tree: what each node is, its numbers, why the judge decided so, and for a
    candidate of the LLM author every attempt (first answer, each repair) with its outcome; then the
    author's candidates that never reached the judge."""
    history = load_history(store, run_id)
    ns = nodes(store, history)
    attempts = author_attempts(store, run_id)
    children: dict[str, list[Node]] = defaultdict(list)
    for n in ns:
        children[n.parent].append(n)
    lines = [f"baseline [{history.baseline.key[:8]}] {history.baseline.describe()}"]

    def walk(key: str, prefix: str) -> None:
        kids = children.get(key, [])
        for i, n in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(f"{prefix}{'`-- ' if last else '|-- '}[{n.key[:8]}] g{n.generation} {n.mark} "
                         f"by {n.author}: {n.operation}")
            inner = prefix + ("    " if last else "|   ")
            lines.append(f"{inner}    {n.describe}")
            lines.append(f"{inner}    {n.numbers()}")
            lines.append(f"{inner}    reason: {n.reason}")
            lines.extend(f"{inner}    {a.line()}" for a in attempts.get(candidate_of(n.operation) or (-1, -1), []))
            if n.adopted:
                walk(n.key, inner)

    walk(history.baseline.key, "")
    if len(lines) == 1:
        lines.append("(no candidates yet)")
    judged = {key for n in ns if (key := candidate_of(n.operation)) is not None}
    lines.extend(unjudged_lines(store, run_id, judged))
    return lines


def _mech_parent_source(store: Store, run_id: str, parents: list[str]) -> tuple[str, str]:
    for pid in parents:
        try:
            m = store.mechanism(run_id, pid)
        except Exception:  # noqa: BLE001 - a parent outside the run: diff against nothing
            continue
        return m.name, m.source
    return "", ""


def stack_diff(store: Store, run_id: str, key_prefix: str) -> str:
    """A unified diff of a stack's mechanism sources and search config against its parent stack.

    A new mechanism derived from another (a mutation) is diffed against that
    mechanism's source; a mechanism added from the library shows in full.
    """
    history = load_history(store, run_id)
    stack, cand = history.candidate_stack(store, key_prefix)
    back = [c for c in history.candidates if c["stack_key"] == history.baseline.key and c["parent"]]
    if cand["operation"] == "baseline" and back:  # candidates that went back to the baseline's stack share its id
        return "".join(_diff(store, run_id, history, stack, c) for c in back)
    return _diff(store, run_id, history, stack, cand)


def _diff(store: Store, run_id: str, history: RunHistory, stack: Stack, cand: dict[str, Any]) -> str:
    """One candidate's diff against its parent (see ``stack_diff``)."""
    parent_key = cand["parent"]
    parent: Stack = history.baseline
    if parent_key and parent_key != history.baseline.key:
        parent, _ = history.candidate_stack(store, parent_key)
    out = [f"stack [{stack.key[:8]}] {stack.describe()}", f"parent [{parent.key[:8]}] {parent.describe()}",
           f"operation: {cand['operation']} (author {cand['author']}, generation {cand['generation']})", ""]
    meta = {m["id"]: m for m in store.mechanisms(run_id)}
    old_ids = set(parent.mechanism_ids)
    new_ids = set(stack.mechanism_ids)
    derived_from = {pid for m in stack.mechanisms if m.id not in old_ids
                    for pid in meta.get(m.id, {}).get("parents", [])}
    for m in parent.mechanisms:
        if m.id not in new_ids and m.id not in derived_from:  # a mutated one shows as its diff below
            out.extend(difflib.unified_diff(m.source.splitlines(), [], f"a/{m.name}", "/dev/null", lineterm=""))
    for m in stack.mechanisms:
        if m.id in old_ids:
            continue
        pname, psource = _mech_parent_source(store, run_id, list(meta.get(m.id, {}).get("parents", [])))
        old = f"a/{pname}" if pname else "/dev/null"
        out.extend(difflib.unified_diff(psource.splitlines(), m.source.splitlines(), old, f"b/{m.name}",
                                        lineterm=""))
    if [m.id for m in stack.mechanisms if m.id in old_ids] != [m.id for m in parent.mechanisms if m.id in new_ids]:
        out.append(f"# order: {' + '.join(m.name for m in parent.mechanisms)} -> "
                   f"{' + '.join(m.name for m in stack.mechanisms)}")
    if stack.search != parent.search:
        out.extend(difflib.unified_diff(_config_lines(parent.search.to_json()), _config_lines(stack.search.to_json()),
                                        "a/search_config", "b/search_config", lineterm=""))
    if len(out) == 4:
        out.append("(no source or config difference)")
    return "\n".join(out) + "\n"


def _config_lines(d: dict[str, Any]) -> list[str]:
    return [f"{k} = {d[k]!r}" for k in sorted(d)]
