"""``bilevel compare RUN... [--lineage ID...]``: runs or lineages side by side on their sealed test panels."""

from __future__ import annotations

import argparse
import sys

from bilevel.runs.commands import add_store_argument, open_existing
from bilevel.runs.compare import find_lineage_run, subject, table_lines, warnings
from bilevel.runs.progress import Progress
from bilevel.runs.store import StoreError

NAME = "compare"
HELP = "compare runs (final stacks) or lineages (RUN:ID or ID) on their test panels, with CIs and costs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ids", nargs="*", metavar="RUN")
    parser.add_argument("--lineage", action="append", default=[], metavar="ID",
                        help="a stack id from `bilevel lineage` (or RUN:ID); repeatable")
    add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    store = open_existing(args.store)
    if not args.run_ids and not args.lineage:
        raise StoreError("compare needs at least one RUN or --lineage ID")
    targets: list[tuple[str, str | None]] = []
    for lin in args.lineage:
        run_id, _, key = lin.rpartition(":")
        targets.append((run_id or find_lineage_run(store, args.run_ids, key), key))
    if not args.lineage:
        targets = [(r, None) for r in args.run_ids]
    with Progress() as progress:
        subjects = [subject(store, r, key, progress.stage, progress.evaluation) for r, key in targets]
    for warning in warnings(subjects):
        print(warning, file=sys.stderr)
    for line in table_lines(subjects):
        print(line)
    return 0
