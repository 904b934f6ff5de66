"""``bilevel lineage RUN [--diff ID]``: the tree of mechanism stacks with verdicts, or one stack's source diff."""

from __future__ import annotations

import argparse

from bilevel.runs.commands import add_store_argument, open_existing
from bilevel.runs.lineage import stack_diff, tree_lines

NAME = "lineage"
HELP = "the tree of mechanism stacks (author, generation, verdict, reason, numbers); --diff ID for a source diff"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id")
    parser.add_argument("--diff", metavar="ID", help="print the source diff of stack ID against its parent")
    add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    store = open_existing(args.store)
    if args.diff:
        print(stack_diff(store, args.run_id, args.diff), end="")
    else:
        print(f"run: {args.run_id}")
        for line in tree_lines(store, args.run_id):
            print(line)
    return 0
