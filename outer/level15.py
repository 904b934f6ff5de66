"""Level 1.5: adjust the base proposer's search config from the trace analysis.

Called once per generation (unless switched off for an ablation). It returns
one candidate that keeps the incumbent's mechanisms and changes only the
search config; the judge decides on it like any other candidate.
"""

from __future__ import annotations

from bilevel.inner.search_config import SearchConfig
from bilevel.judge.stack import Stack
from bilevel.outer.authors.base import Candidate
from bilevel.outer.traces import TraceReport

AUTHOR = "level1.5"


def _adjust(search: SearchConfig, analysis: TraceReport, generation: int) -> tuple[SearchConfig, str] | None:
    """One change, chosen from the most pressing symptom in the traces."""
    if analysis.repeated_share > 0.05 or analysis.plateau_share > 0.5:
        step = min(1.0, search.step_size * 1.5)
        if step != search.step_size:
            return search.replace(step_size=step), (
                f"widen step {search.step_size:g} -> {step:g} (repeats {analysis.repeated_share:.0%}, "
                f"plateau {analysis.plateau_share:.0%})")
    if analysis.never_moved and search.n_changes < 4:
        return search.replace(n_changes=search.n_changes + 1), (
            f"change up to {search.n_changes + 1} parameters at once ({', '.join(analysis.never_moved)} never moved)")
    if analysis.kept_share > 0.15 or generation % 2 == 1:
        step = max(0.01, search.step_size * 0.6)
        return search.replace(step_size=step), (
            f"narrow step {search.step_size:g} -> {step:g} (improved on {analysis.kept_share:.0%} of trials)")
    step = min(1.0, search.step_size * 1.5)
    return search.replace(step_size=step), f"widen step {search.step_size:g} -> {step:g}"


def propose_config(incumbent: Stack, analysis: TraceReport, generation: int) -> Candidate | None:
    """A candidate with the incumbent's mechanisms and an adjusted search config, or None."""
    adjusted = _adjust(incumbent.search, analysis, generation)
    if adjusted is None or adjusted[0] == incumbent.search:
        return None
    search, why = adjusted
    return Candidate(Stack(incumbent.mechanisms, search), f"config: {why}", AUTHOR)
