"""``bilevel ablate``: groups A-D of the bilevel ablation plus the controls, N repeats, one table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bilevel.runs.ablate import ABLATE_DEFAULTS, GROUPS, NUMERIC, TUNED, run_ablation
from bilevel.runs.commands import add_store_argument
from bilevel.runs.progress import Progress
from bilevel.runs.spec import SpecError, load_spec
from bilevel.runs.store import Store

NAME = "ablate"
HELP = "run the ablation groups A (inner only), B (+1.5), C (+1.5+2), D (+2) and the controls, N repeats each"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", type=Path, help="TOML spec (default: embedded defaults made small for ablations)")
    parser.add_argument("--benchmark")
    parser.add_argument("--author", help="the Level 2 author of groups C and D (default: offline)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per group (default: %(default)s)")
    parser.add_argument("--generations", type=int)
    parser.add_argument("--candidates", type=int)
    parser.add_argument("--budget", type=int, help="trials per inner run")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--model", help="the model of both loops (as `bilevel run --model`)")
    parser.add_argument("--adapter", type=Path, metavar="DIR",
                        help="a LoRA adapter of the mlx model (`bilevel tune`): adds the group 'tuned', the tuned "
                             "author against the base author of group C on the same panels")
    parser.add_argument("--groups", help=f"comma-separated subset of {','.join(g.name for g in GROUPS)} "
                                         "(A and one outer group are always needed); with --model also "
                                         "'numeric': group C with [llm] inner = \"numeric\"")
    parser.add_argument("--yes", action="store_true",
                        help="go ahead when a priced model's estimate is over $5 and no [llm] *_max_usd cap is set")
    add_store_argument(parser)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    run = {k: v for k, v in (("benchmark", args.benchmark), ("author", args.author), ("seed", args.seed),
                             ("generations", args.generations), ("candidates", args.candidates),
                             ("workers", args.workers)) if v is not None}
    out: dict[str, Any] = {"run": run}
    llm = {k: v for k, v in (("model", getattr(args, "model", None)),
                             ("adapter", str(args.adapter) if getattr(args, "adapter", None) else None)) if v}
    if llm:
        out["llm"] = llm
        if "model" in llm:
            run.setdefault("author", "llm")
    if args.budget is not None:
        out["inner"] = {"budget": args.budget}
    return out


def run(args: argparse.Namespace) -> int:
    if args.repeats < 1:
        raise SpecError("--repeats must be at least 1")
    if args.spec is not None:
        spec = load_spec(args.spec, _overrides(args))
    else:
        spec = load_spec(None, _layered(args))
    from bilevel.runs.finetune import pin_adapter  # the tuned-author arm (issue 16)

    spec = pin_adapter(spec)
    every = GROUPS + ((TUNED,) if spec["llm"]["adapter"] else ()) + ((NUMERIC,) if spec["llm"]["model"] else ())
    groups = tuple(g for g in every if g is not NUMERIC)  # the numeric arm runs when --groups names it
    if args.groups:
        wanted = [g.strip() for g in args.groups.split(",") if g.strip()]
        unknown = sorted(set(wanted) - {g.name for g in every})
        if unknown:
            raise SpecError(f"unknown groups {unknown}; groups are {', '.join(g.name for g in every)}"
                            + ("" if spec["llm"]["adapter"] else " ('tuned' needs --adapter)")
                            + ("" if spec["llm"]["model"] else " ('numeric' needs --model)"))
        groups = tuple(g for g in every if g.name in wanted or g.name == "A")
    from bilevel.runs.driver import author_brief, first_search_space, inner_settings, judge_setup
    from bilevel.runs.estimate import gate

    setup = judge_setup(spec)  # the study's cost, gated once before anything is recorded
    settings = inner_settings(spec)
    gate(spec, first_search_space(setup), setup.panels, settings, args.yes,
         brief=author_brief(spec, setup, settings),
         runs=args.repeats * sum(1 for g in groups if g.outer))
    store = Store.in_dir(args.store)
    print(f"ablation: {spec['run']['benchmark']}, author {spec['run']['author']}, {args.repeats} repeats, "
          f"groups {', '.join(g.name for g in groups)}", flush=True)
    with Progress() as progress:
        result = run_ablation(store, spec, args.repeats, groups, progress.stage, progress.evaluation, yes=True)
    print("--- ablation ---")
    for line in result.table():
        print(line)
    print(f"wall_s: {result.wall_s:.1f}")
    return 0


def _layered(args: argparse.Namespace) -> dict[str, Any]:
    """The ablation defaults with the flags on top (sections merged key by key)."""
    out = {k: dict(v) for k, v in ABLATE_DEFAULTS.items()}
    for section, values in _overrides(args).items():
        out.setdefault(section, {}).update(values)
    return out
