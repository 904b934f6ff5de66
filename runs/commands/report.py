"""``bilevel report RUN [--out FILE]``: one self-contained HTML page with plots."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bilevel.runs.commands import add_store_argument, open_existing
from bilevel.runs.progress import Progress
from bilevel.runs.replay_stack import replay_stack
from bilevel.runs.report import write_report

NAME = "report"
HELP = "write a self-contained HTML report with plots (opens in a browser, no server)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id")
    parser.add_argument("--out", type=Path, help="output file (default: report-RUN.html)")
    parser.add_argument("--transfer", metavar="BENCHMARK", help="also replay the final stack on this benchmark")
    parser.add_argument("--transfer-options", default=None, help="its options as JSON (default: its defaults)")
    parser.add_argument("--transfer-instances", type=int, default=4, help="first N instances (default: 4)")
    add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    store = open_existing(args.store)
    store.run(args.run_id)
    out = args.out or Path(f"report-{args.run_id}.html")
    with Progress() as progress:
        transfer = None
        if args.transfer:
            progress.stage(f"transfer: final stack vs baseline on {args.transfer}")
            options = json.loads(args.transfer_options) if args.transfer_options else {}
            transfer = replay_stack(store, args.run_id, None, args.transfer, options, args.transfer_instances,
                                    on_eval=progress.evaluation)
        write_report(store, args.run_id, out, progress.stage, progress.evaluation, transfer)
    print(f"wrote {out}")
    return 0
