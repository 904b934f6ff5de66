"""The ablation runner: the groups of the published bilevel ablation plus the controls it lacked.

Groups (each evaluated on the sealed test panel, paired with group A):

- ``A``: the inner loop only (the baseline stack, no outer loop);
- ``B``: + Level 1.5 (the outer loop with only config adjustment; no author);
- ``C``: + Level 1.5 and Level 2 (the full bilevel run);
- ``D``: + Level 2 only (Level 1.5 off);
- ``restart``: restart-only (the restart-on-plateau mechanism alone);
- ``sham``: a mechanism that fires and changes nothing useful;
- ``offline``: the offline author as a blind baseline for the LLM author (when
  the study's author is itself ``offline`` and C is run, this is group C, not rerun).

Each repeat uses its own outer seed and its own panel split (the panel salt
gets the repeat number), so repeats are independent samples of instances,
seeds and outer-loop randomness. The repeat is the unit of the table
(``judge.power``): per-repeat means, a t interval and an exact sign-flip test
across repeats, the minimum detectable effect at the observed spread, and a
``power:`` line saying when the study cannot detect effects of the size it
reports. Every outer run is an ordinary run in the
store (with an ``ablation`` event naming its group and repeat): it can be
shown, compared, reported and replayed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bilevel.judge.power import RepeatStats, repeat_stats
from bilevel.judge.stack import Mechanism, Stack
from bilevel.mechanisms.library import load_source
from bilevel.outer.authors.base import AuthorContext, Candidate
from bilevel.runs.driver import create_run, execute
from bilevel.runs.history import load_history, test_bench
from bilevel.runs.spec import RunSpec, merge
from bilevel.runs.store import Store

ABLATE_DEFAULTS: dict[str, Any] = {
    "run": {"generations": 3, "candidates": 3},
    "inner": {"budget": 40},
    "panels": {"search_instances": 2, "validation_instances": 8, "test_instances": 8, "seeds_per_instance": 1},
    "judge": {"stage1_pairs": 4, "n_boot": 1000},
}
"""What ``bilevel ablate`` runs when no spec file is given (on top of the embedded defaults): small
enough that 5 repeats of every group finish on 2 cores in minutes."""


@dataclass(frozen=True)
class Group:
    """One row of the ablation table. ``outer`` groups run the outer loop; the others are fixed stacks."""

    name: str
    label: str
    outer: bool
    level15: bool = False
    author: str | None = None  # None: the study's author; "none": no Level 2 author
    mechanism: str | None = None  # fixed groups: the one control mechanism (None: the baseline)
    adapter: bool = False  # the study's [llm] adapter (the tuned author); other groups run the base model
    inner: str | None = None  # "numeric": [llm] inner for this group (None: the study's)


GROUPS: tuple[Group, ...] = (
    Group("A", "inner loop only", outer=False),
    Group("B", "+ Level 1.5", outer=True, level15=True, author="none"),
    Group("C", "+ Level 1.5 and Level 2", outer=True, level15=True),
    Group("D", "+ Level 2 only", outer=True, level15=False),
    Group("restart", "restart-only control", outer=False, mechanism="restart_plateau"),
    Group("sham", "sham mechanism control", outer=False, mechanism="sham"),
    Group("offline", "offline author (blind baseline for LLM)", outer=True, level15=True,
          author="offline"),
)
TUNED = Group("tuned", "+ Level 1.5 and Level 2, tuned author (LoRA adapter)", outer=True, level15=True,
              adapter=True)
"""The study arm of issue 16: group C with the spec's ``[llm] adapter``; added when the spec names one."""
NUMERIC = Group("numeric", "+ Level 1.5 and Level 2, numeric inner proposer ([llm] inner)", outer=True,
                level15=True, inner="numeric")
"""The study arm of issue 12: group C with ``[llm] inner = "numeric"`` (the model writes mechanisms, the base
strategy proposes); added when the study has a model and asks for it (``--groups ...,numeric``)."""


class NoAuthor:
    """A Level 2 author that writes nothing (group B: Level 1.5 proposes the only candidates)."""

    name = "none"

    def propose(self, ctx: AuthorContext, n: int) -> list[Candidate]:
        return []


@dataclass(frozen=True)
class Row:
    """A group's result over all repeats: each repeat's paired differences against group A on that
    repeat's test panel. The repeat (an outer run with its own seed and panels) is the unit."""

    group: Group
    diffs: tuple[float, ...]
    repeat_means: tuple[float, ...]
    kept: tuple[int, ...]
    runs: tuple[str, ...]
    note: str = ""

    def stats(self) -> RepeatStats | None:
        """Mean over repeats of the per-repeat mean improvement over A, its t interval, the exact
        sign-flip p across repeats and the minimum detectable effect; None without repeats."""
        return repeat_stats(self.repeat_means) if self.repeat_means else None


@dataclass(frozen=True)
class AblationResult:
    rows: tuple[Row, ...]
    repeats: int
    wall_s: float

    def table(self) -> list[str]:
        """One line per group against A, then what the study can and cannot detect."""
        head = f"{'group':<8} {'description':<60} {'n':>3} {'pairs':>5} {'mean':>8} {'ci_low':>8} {'ci_high':>8} " \
               f"{'p_vs_A':>7} {'sd_rep':>7} {'mde':>7} {'kept':>5}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            st = r.stats()
            nan = math.nan
            mean, low, high, p, sd, mde = (st.mean, st.low, st.high, st.p, st.sd, st.mde) if st else (nan,) * 6
            kept = f"{np.mean(r.kept):.1f}" if r.kept else "-"
            p_text = "-" if r.group.name == "A" else _f(p, ".3g")
            lines.append(f"{r.group.name:<8} {r.group.label + r.note:<60} {len(r.repeat_means):>3} "
                         f"{len(r.diffs):>5} {_f(mean)} {_f(low)} {_f(high)} {p_text:>7} {_f(sd, '.4f', 7)} "
                         f"{_f(mde, '.4f', 7)} {kept:>5}")
        lines.append("improvement = A score - group score on the sealed test panel (positive is better); unit: the "
                     "outer run (repeat): mean of per-repeat means, 95% t interval over repeats; p_vs_A: exact "
                     "two-sided sign-flip test across repeats; mde: minimum detectable effect (5% two-sided, "
                     "80% power) at the observed spread; kept: stacks kept per run")
        lines.append(self.power_line())
        return lines

    def power_line(self) -> str:
        """Whether the study can detect effects of the size it reports, in words."""
        rows = [(r, r.stats()) for r in self.rows if r.group.name != "A" and r.repeat_means]
        if self.repeats < 2:
            return ("power: one repeat gives no spread across outer runs: no test, no interval and no minimum "
                    "detectable effect; run --repeats 3 or more")
        if all(st is not None and st.sd == 0.0 and st.mean == 0.0 for _, st in rows):
            return ("power: every group matched A on every repeat (nothing was kept or nothing changed a score): "
                    "this study measured no effect and cannot say how large an effect it could detect")
        blind = [r.group.name for r, st in rows if st is not None and not st.detectable]
        smallest = min((2.0 / 2**self.repeats), 1.0)
        floor = f"; with {self.repeats} repeats the smallest possible p is {smallest:.3g}"
        if blind:
            return (f"power: this study cannot detect effects of the size it reports for {', '.join(blind)} "
                    f"(|mean| below the minimum detectable effect){floor}; the mde shrinks as 1/sqrt(repeats)")
        return f"power: every reported effect is at least its minimum detectable effect{floor}"


def _f(x: float, fmt: str = "+.4f", width: int = 8) -> str:
    return ("n/a" if math.isnan(x) else format(0.0 if abs(x) < 5e-12 else x, fmt)).rjust(width)  # no "-0.0000"


def repeat_spec(base: RunSpec, repeat: int) -> dict[str, Any]:
    """The spec of one repeat: its own outer seed and panel split."""
    data = base.to_json()
    return merge(data, {"run": {"seed": int(data["run"]["seed"]) + repeat},
                        "panels": {"salt": f"{data['panels']['salt']}-r{repeat}"}}, "ablation")


def run_ablation(store: Store, base: RunSpec, repeats: int, groups: tuple[Group, ...] = GROUPS,
                 progress: Callable[[str], None] = lambda _m: None,
                 on_eval: Callable[[int, int], None] | None = None, yes: bool = False) -> AblationResult:
    """Run every group ``repeats`` times and pair each with group A on the same test panel. ``yes``: the
    study's cost estimate was accepted (``bilevel ablate`` gates it once), so no run is refused for it."""
    started = time.monotonic()
    study_author = str(base["run"]["author"])
    names = {g.name for g in groups}
    same = study_author == "offline" and "C" in names  # the offline control is group C itself
    diffs: dict[str, list[float]] = {g.name: [] for g in groups}
    means: dict[str, list[float]] = {g.name: [] for g in groups}
    kept: dict[str, list[int]] = {g.name: [] for g in groups}
    run_ids: dict[str, list[str]] = {g.name: [] for g in groups}
    for r in range(repeats):
        data = repeat_spec(base, r)
        finals: dict[str, Stack] = {}
        anchor = ""
        for g in groups:
            if not g.outer or (g.name == "offline" and same):
                continue
            progress(f"repeat {r + 1}/{repeats}: group {g.name} ({g.label})")
            author = g.author if g.author not in (None, "none") else study_author
            llm = {} if g.adapter else {"adapter": "", "adapter_hash": ""}  # only the tuned arm has the adapter
            if g.inner is not None:
                llm["inner"] = g.inner
            spec = RunSpec(merge(data, {"run": {"level15": g.level15, "author": author}, "llm": llm}, "ablation"))
            run_id = create_run(store, spec, yes=yes)
            store.recorder(run_id).record_event("ablation", "ablation", {"group": g.name, "repeat": r,
                                                                         "label": g.label})
            execute(store, run_id, progress=progress, on_eval=on_eval,
                    author=NoAuthor() if g.author == "none" else None)
            history = load_history(store, run_id)
            finals[g.name] = history.final
            kept[g.name].append(sum(1 for x in history.generations if x.kept is not None))
            run_ids[g.name].append(run_id)
            anchor = anchor or run_id
        if not anchor:
            raise ValueError("an ablation needs at least one outer group to define its panels")
        with test_bench(store, anchor, on_eval=on_eval) as bench:
            baseline = load_history(store, anchor).baseline
            for g in groups:
                if not g.outer:
                    finals[g.name] = baseline if g.mechanism is None else Stack(
                        (Mechanism(g.mechanism, load_source(g.mechanism)),), baseline.search)
            if "offline" in names and same:
                finals["offline"] = finals["C"]
            progress(f"repeat {r + 1}/{repeats}: test panel of every group")
            base_results = bench.results(baseline)
            for g in groups:
                res = bench.results(finals[g.name])
                d = [b.primary - x.primary for b, x in zip(base_results, res, strict=True)]
                diffs[g.name].extend(d)
                means[g.name].append(float(np.mean(d)))
    rows = []
    for g in groups:
        note = " = C (offline study)" if g.name == "offline" and same else ""
        rows.append(Row(g, tuple(diffs[g.name]), tuple(means[g.name]),
                        tuple(kept["C"] if note else kept[g.name]), tuple(run_ids[g.name]), note))
    return AblationResult(tuple(rows), repeats, time.monotonic() - started)
