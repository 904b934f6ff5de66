"""``bilevel import RECIPE [--as RUN_ID]``: a recipe (``bilevel export RUN --recipe FILE``) back into a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from bilevel.runs.commands import add_store_argument
from bilevel.runs.recipe import import_recipe
from bilevel.runs.store import Store

NAME = "import"
HELP = "import a recipe file as a run (it then shows, compares, reports and replays)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--as", dest="new_id", metavar="RUN_ID", help="import under another run id")
    add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    store = Store.in_dir(args.store)
    run_id, note = import_recipe(store, args.recipe, args.new_id)
    print(f"run: {run_id}")
    print(note)
    return 0
