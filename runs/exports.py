"""The exports beyond ``results.tsv``: a run's recipe and a kept stack as an optuna sampler file."""

from __future__ import annotations

from pathlib import Path

from bilevel.runs.history import load_history
from bilevel.runs.recipe import write_recipe
from bilevel.runs.store import Store


def export_extras(store: Store, run_id: str, recipe: Path | None, sampler: Path | None,
                  stack_id: str | None, optunahub: Path | None = None) -> list[str]:
    """Write what was asked for (called by ``bilevel export``); returns one line per file written."""
    out = []
    if recipe is not None:
        write_recipe(store, run_id, recipe)
        out.append(f"wrote {recipe} (recipe: `bilevel import {recipe}`)")
    if sampler is None and optunahub is None:
        return out
    history = load_history(store, run_id)
    stack = history.final if stack_id is None else history.candidate_stack(store, stack_id)[0]
    budget = int(history.spec["inner"]["budget"])
    if sampler is not None:
        from bilevel.runs.optuna_sampler import write_sampler_file

        write_sampler_file(stack, sampler, run_id, budget=budget)
        out.append(f"wrote {sampler} (optuna sampler for {stack.describe()}: "
                   f"bilevel.runs.optuna_sampler.StackSampler.load({str(sampler)!r}))")
    if optunahub is not None:
        from bilevel.runs.export_optunahub import CLASS_NAME, write_optunahub_package

        write_optunahub_package(stack, optunahub, run_id, budget=budget)
        out.append(f"wrote {optunahub}/ (OptunaHub package: optunahub.load_local_module("
                   f"package={optunahub.name!r}, registry_root={str(optunahub.parent)!r}).{CLASS_NAME}())")
    return out
