"""Sub-commands of ``bilevel`` that live in their own modules.

Each module named in ``MODULES`` defines ``NAME: str``, ``HELP: str``,
``add_arguments(parser: argparse.ArgumentParser) -> None`` and
``run(args: argparse.Namespace) -> int``; ``runs.cli`` registers them. Add a
command by writing its module and adding one line here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_STORE = Path("bilevel-runs")


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--store DIR`` option every command that reads or writes runs takes."""
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="run store directory (default: %(default)s)")

MODULES: tuple[str, ...] = (
    "bilevel.runs.commands.lineage",
    "bilevel.runs.commands.compare",
    "bilevel.runs.commands.report",
    "bilevel.runs.commands.import_recipe",
    "bilevel.runs.commands.ablate",
    "bilevel.runs.commands.replay",
)
