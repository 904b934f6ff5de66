"""``bilevel replay RUN --stack [ID] [--benchmark B] [--instances ...] [--seeds ...]``.

Replays a discovered stack (default: the run's final one) on new instances and
seeds, against the baseline on the same pairs. ``runs.commands.replay``
dispatches here when any of these options is given.
"""

from __future__ import annotations

import argparse
import json

from bilevel.runs.commands import open_existing
from bilevel.runs.progress import Progress
from bilevel.runs.replay_stack import replay_stack
from bilevel.runs.terminal import strict_json

DEFAULT_INSTANCES = ["4"]
DEFAULT_SEEDS = [100_000, 100_001]
FINAL = "final"


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of stack replay; any of them turns ``bilevel replay`` into a stack replay."""
    parser.add_argument("--stack", metavar="ID", nargs="?", const=FINAL,
                        help="replay a stack (an id from `bilevel lineage`; no id: the run's final stack) "
                             "on new instances and seeds against the baseline")
    parser.add_argument("--benchmark", help="another benchmark (a transfer test; default: the run's)")
    parser.add_argument("--options", default=None, help="benchmark options as JSON (default: the run's)")
    parser.add_argument("--instances", nargs="+", default=None,
                        help="instance keys (e.g. bbob-f3-d5-i20) or one number N: N instances none of the "
                             "run's panels used, spread over the benchmark's groups (topped up with panel "
                             f"instances when too few are left; default: {DEFAULT_INSTANCES[0]})")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help=f"inner-loop seeds (default: {' '.join(map(str, DEFAULT_SEEDS))})")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def wants_stack_replay(args: argparse.Namespace) -> bool:
    return any(getattr(args, k) is not None for k in ("stack", "benchmark", "options", "instances", "seeds"))


def run(args: argparse.Namespace) -> int:
    """Called by ``bilevel replay`` when :func:`wants_stack_replay` is true."""
    store = open_existing(args.store)
    names = args.instances or DEFAULT_INSTANCES
    instances: list[str] | int = int(names[0]) if len(names) == 1 and names[0].isdigit() else list(names)
    seeds = args.seeds or DEFAULT_SEEDS
    stack = None if args.stack in (None, FINAL) else args.stack
    options = json.loads(args.options) if args.options else None
    with Progress() as progress:
        progress.stage("replaying stack and baseline")
        result = replay_stack(store, args.run_id, stack, args.benchmark, options, instances, seeds,
                              args.workers, on_eval=progress.evaluation)
    if args.json:
        print(strict_json(result.to_json(), sort_keys=True))
    else:
        for line in result.lines():
            print(line)
    return 0
