"""``bilevel tune --data DIR --model PATH --out ADAPTER [--iters N]``: LoRA-tune the author on exported data."""

from __future__ import annotations

import argparse
from pathlib import Path

from bilevel.runs.finetune import TuneError, tune

NAME = "tune"
HELP = "LoRA fine-tuning (mlx-lm) of a local model on `export --finetune` data; writes an adapter"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="the folder `bilevel export --finetune` wrote")
    parser.add_argument("--model", type=Path, required=True, help="a local mlx-lm model directory (or mlx:PATH)")
    parser.add_argument("--out", type=Path, required=True, help="the adapter folder to write")
    parser.add_argument("--iters", type=int, default=100, help="training steps (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-seq-length", type=int, default=2048,
                        help="longer examples are cut by mlx-lm (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    model = Path(str(args.model).removeprefix("mlx:"))
    try:
        result = tune(args.data, model, args.out, args.iters, batch_size=args.batch_size, rank=args.rank,
                      learning_rate=args.learning_rate, max_seq_length=args.max_seq_length, seed=args.seed)
    except TuneError as exc:
        print(f"error: {exc}")
        return 2
    print(f"adapter: {result.adapter}")
    print(f"adapter_hash: {result.adapter_hash}")
    print(f"examples: train {result.train_examples}, valid {result.valid_examples}; iters {result.iters}")
    print(f"use it: bilevel run --model mlx:{model} --adapter {result.adapter}")
    return 0
