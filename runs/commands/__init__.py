"""Sub-commands of ``bilevel`` that live in their own modules.

Each module named in ``MODULES`` defines ``NAME: str``, ``HELP: str``,
``add_arguments(parser: argparse.ArgumentParser) -> None`` and
``run(args: argparse.Namespace) -> int``; ``runs.cli`` registers them. Add a
command by writing its module and adding one line here.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bilevel.runs.store import Store

DEFAULT_STORE = Path("bilevel-runs")
STORE_ENV = "BILEVEL_STORE"


def default_store() -> Path:
    """The store folder when no ``--store`` is given: ``$BILEVEL_STORE``, else ``bilevel-runs``."""
    env = os.environ.get(STORE_ENV, "").strip()
    return Path(env) if env else DEFAULT_STORE


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--store DIR`` option every command that reads or writes runs takes (``--store`` beats the env)."""
    parser.add_argument("--store", type=Path, default=default_store(),
                        help=f"run store directory (default: ${STORE_ENV} or {DEFAULT_STORE}; now %(default)s)")


def open_existing(directory: Path) -> Store:
    """The store of ``directory`` for a read-only command; never creates one (a missing store is an error)."""
    return Store.existing(Path(directory), hint=f"point elsewhere with --store DIR or {STORE_ENV}=DIR")


def store_hint(directory: Path) -> str:
    """`` --store DIR`` when ``directory`` is not the default store (for hints that name a command), else ``""``."""
    return "" if Path(directory) == default_store() else f" --store {directory}"

MODULES: tuple[str, ...] = (
    "bilevel.runs.commands.lineage",
    "bilevel.runs.commands.compare",
    "bilevel.runs.commands.report",
    "bilevel.runs.commands.import_recipe",
    "bilevel.runs.commands.ablate",
    "bilevel.runs.commands.replay",
    "bilevel.runs.commands.judge",
    "bilevel.runs.commands.calibrate",
    "bilevel.runs.commands.best",
    "bilevel.runs.commands.tune",
    "bilevel.runs.commands.transcripts",
)
