"""The numbers a run's summary prints about its panels: confirmation, selection, test, and warnings.

``val_*`` come from the confirmation pairs (fresh per generation, never used
to select among candidates), ``selection_*`` from the validation panel that
ranked the candidates (biased upwards by that selection), ``test_*`` from the
sealed test panel. Every interval names the unit it resampled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bilevel.judge.evaluate import Comparison, Judge
from bilevel.judge.panels import PanelEntry, Panels
from bilevel.judge.stack import Stack
from bilevel.judge.stats import few_units_warning


def _ci(c: Comparison) -> str:
    return f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]"


def confirmation_entries(panels: Panels, generations: int) -> tuple[PanelEntry, ...]:
    """The confirmation pairs of the generations that ran (empty when confirmation is off)."""
    if not panels.confirmation_instances:
        return ()
    return tuple(e for g in range(generations) for e in panels.confirmation(g))


def unit_warnings(panels: Panels) -> list[str]:
    """Warnings for deciding panels (validation, one generation's confirmation) with few units."""
    deciding: list[tuple[str, Sequence[PanelEntry]]] = [("validation", panels.validation)]
    if panels.confirmation_instances:
        deciding.append(("confirmation", panels.confirmation(0)))
    out = []
    for name, entries in deciding:
        w = few_units_warning(name, [e.group for e in entries], [e.instance for e in entries])
        if w is not None:
            out.append(w)
    return out


def panel_numbers(judge: Judge, panels: Panels, final: Stack, baseline: Stack, generations: int,
                  progress: Callable[[str], None]) -> dict[str, Any]:
    """The summary's panel fields, in print order. Called once when a run ends."""
    confirm = confirmation_entries(panels, generations)
    progress("final: kept stack vs baseline on the validation panel (selection)")
    sel = judge.compare(final, baseline, panels.validation)
    out: dict[str, Any] = {}
    if confirm:
        progress("final: kept stack vs baseline on the confirmation panels")
        val = judge.compare(final, baseline, confirm)
        reused = "" if generations <= panels.fresh_generations else (
            f"; instances fresh for {panels.fresh_generations} generations, then reused with new seeds")
        out["val_panel"] = (f"confirmation: {panels.confirmation_instances} instances x {panels.seeds_per_instance} "
                            f"seeds per generation, {generations} generations; never used to rank candidates{reused}")
    else:
        val = sel
        out["val_panel"] = "validation (no confirmation stage: these are the selection numbers)"
    out.update({"val_improvement": f"{val.mean:+.4f}", "val_ci": _ci(val), "val_ci_unit": val.unit,
                "val_pairs": val.n_pairs, "confirmation_pairs": len(confirm),
                "selection_improvement": f"{sel.mean:+.4f}", "selection_ci": _ci(sel),
                "selection_ci_unit": sel.unit, "selection_pairs": sel.n_pairs})
    progress("final: kept stack vs baseline on the sealed test panel")
    test = judge.compare(final, baseline, panels.test)
    out.update({"test_improvement": f"{test.mean:+.4f}", "test_ci": _ci(test), "test_ci_unit": test.unit,
                "test_pairs": test.n_pairs, "split": panels.split})
    warnings = unit_warnings(panels)
    if not panels.confirmation_instances:
        warnings.append(f"no confirmation stage: only {len(panels.confirmation_pool)} instances are left unused "
                        "by the other panels (val_* are the selection numbers); shrink the panels or give the "
                        "benchmark more instances")
    if warnings:
        out["warning"] = "; ".join(warnings)
    return out
