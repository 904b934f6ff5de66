"""The built-in mechanisms, as source text.

The built-ins live in ``mechanisms/builtin/*.py``. They are data, not code of
the host: nothing here imports them. They are read as text and run through
the sandbox exactly like mechanisms an author writes.
"""

from __future__ import annotations

from importlib import resources

BUILTIN_NAMES: tuple[str, ...] = (
    "tabu",
    "ucb_bandit",
    "lhs_design",
    "restart_plateau",
    "trust_region",
    "elite_crossover",
    "quad_surrogate",
    "one_plus_one_es",
    "coord_step",
    "halton_design",
    "cma_rank_one",
    "simplex_thompson",
)
"""The built-in search mechanisms (the controls' ``sham`` is not one of them)."""

CONTROL_NAMES: tuple[str, ...] = ("sham", "restart_plateau")
"""The mechanisms a study uses as controls: fires-but-does-nothing, and restart-only."""

ALL_NAMES: tuple[str, ...] = BUILTIN_NAMES + tuple(n for n in CONTROL_NAMES if n not in BUILTIN_NAMES)


class UnknownMechanismError(KeyError):
    """No built-in mechanism has this name; the message lists the names there are."""

    def __str__(self) -> str:  # KeyError's str() would show the repr of the message
        return str(self.args[0]) if self.args else ""


def load_source(name: str) -> str:
    """The source text of the built-in (or control) mechanism ``name``."""
    if name not in ALL_NAMES:
        raise UnknownMechanismError(f"unknown built-in mechanism {name!r}; known: {', '.join(ALL_NAMES)}")
    return resources.files("bilevel.mechanisms").joinpath("builtin", f"{name}.py").read_text(encoding="utf-8")


def all_sources() -> dict[str, str]:
    """Every built-in and control mechanism, by name, in :data:`ALL_NAMES` order."""
    return {name: load_source(name) for name in ALL_NAMES}
