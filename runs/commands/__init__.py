"""Sub-commands of ``bilevel`` that live in their own modules.

Each module named in ``MODULES`` defines ``NAME: str``, ``HELP: str``,
``add_arguments(parser: argparse.ArgumentParser) -> None`` and
``run(args: argparse.Namespace) -> int``; ``runs.cli`` registers them. Add a
command by writing its module and adding one line here.
"""

from __future__ import annotations

MODULES: tuple[str, ...] = (
    "runs.commands.lineage",
    "runs.commands.compare",
    "runs.commands.report",
    "runs.commands.import_recipe",
    "runs.commands.ablate",
    "runs.commands.replay",
)
