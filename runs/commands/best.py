"""``bilevel best RUN [--stack ID]``: the best config per instance (mix weights included) with its score,
for the run's final (kept) stack and the baseline, or for one stack of its lineage."""

from __future__ import annotations

import argparse

from bilevel.judge.benchmarks import get_benchmark
from bilevel.runs.commands import add_store_argument, open_existing
from bilevel.runs.found import best_lines
from bilevel.runs.history import load_history
from bilevel.runs.terminal import say

NAME = "best"
HELP = "the best config per instance with its score, for the kept stack and the baseline (or --stack ID)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id")
    parser.add_argument("--stack", metavar="ID", help="a stack id from `bilevel lineage` (any unique prefix)")
    add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    store = open_existing(args.store)
    history = load_history(store, args.run_id)
    judged = [e for e in store.events(args.run_id, "run_end") if e.get("stopped") == "judged"]
    if args.stack:
        stacks = [("stack", history.candidate_stack(store, args.stack)[0])]
    elif judged and history.candidates:  # a `bilevel judge` run: the judged stack and the baseline
        stacks = [("judged stack", history.candidate_stack(store, history.candidates[0]["stack_key"])[0]),
                  ("baseline", history.baseline)]
    else:
        stacks = [("kept stack", history.final), ("baseline", history.baseline)]
        if history.final.key == history.baseline.key:
            stacks = [("kept stack (nothing was kept: the baseline)", history.baseline)]
    bench = get_benchmark(history.benchmark, history.spec["benchmark"])
    score = f"{bench.SCORE_TEXT} (the judge's score of each inner run: its best trial)"
    for line in best_lines(store, args.run_id, stacks, score):
        say(line)
    return 0
