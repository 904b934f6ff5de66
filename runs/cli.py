"""The ``bilevel`` command line."""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bilevel.inner.chat import ChatError
from bilevel.judge.errors import JudgeError
from bilevel.outer.errors import OuterError
from bilevel.runs import stop
from bilevel.runs.commands import MODULES, add_store_argument, open_existing, store_hint
from bilevel.runs.driver import effective_spec, execute, new_run, with_paths
from bilevel.runs.failures import failed_trials_line, failure_counts
from bilevel.runs.llm_setup import ledger_lines
from bilevel.runs.progress import Progress
from bilevel.runs.spec import SpecError, load_spec
from bilevel.runs.store import Store, StoreError
from bilevel.runs.terminal import say, strict_json
from bilevel.runs.views import last_summary, lineage_lines, results_tsv, sandbox_layers_line
from bilevel.sandbox.outcome import SandboxError

EXIT_USAGE = 2


class CliError(Exception):
    """A mistake on the command line; printed as ``error: ...`` with exit status 2."""


def _parser() -> argparse.ArgumentParser:
    import bilevel

    ap = argparse.ArgumentParser(prog="bilevel", description="Bilevel meta-research engine.")
    ap.add_argument("--version", action="version", version=f"bilevel {bilevel.__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start a run (embedded defaults, a TOML spec, and flags that override it)")
    run.add_argument("--spec", type=Path, help="TOML spec file")
    run.add_argument("--benchmark", help="benchmark name (e.g. bbob)")
    run.add_argument("--author", help="mechanism author (e.g. offline)")
    run.add_argument("--generations", type=int)
    run.add_argument("--candidates", type=int, help="candidates per generation")
    run.add_argument("--seed", type=int)
    run.add_argument("--budget", type=int, help="trials per inner run")
    run.add_argument("--workers", type=int, help="evaluation processes (Ray: CPUs of a local Ray)")
    run.add_argument("--executor", choices=("inprocess", "process", "ray"),
                     help="where inner runs execute (default: process)")
    run.add_argument("--address", help="address of an existing Ray cluster (with --executor ray)")
    run.add_argument("--wall-time", type=float, help="hard wall-time budget in seconds (0: none)")
    run.add_argument("--no-level15", action="store_true", help="switch Level 1.5 config adjustment off")
    run.add_argument("--model", help="the model of both loops, backend:model (ollama:qwen2.5:7b, anthropic:claude-..., "
                     "mlx:/path, scripted:demo); selects the LLM author and the LLM proposer")
    run.add_argument("--author-model", help="ablation only: another model for the author (recorded in the run)")
    run.add_argument("--adapter", type=Path, metavar="DIR",
                     help="a LoRA adapter (`bilevel tune`) for the mlx model; its hash is recorded ([llm] adapter)")
    run.add_argument("--library", type=Path, action="append", default=[], metavar="FILE",
                     help="add your mechanism file to the author's library (repeatable; also [run] library)")
    run.add_argument("--yes", action="store_true",
                     help="go ahead when a priced model's estimate is over $5 and no [llm] *_max_usd cap is set")
    add_store_argument(run)

    resume = sub.add_parser("resume", help="continue a stopped or killed run")
    resume.add_argument("run_id")
    resume.add_argument("--wall-time", type=float, help="a new wall-time budget for this session")
    resume.add_argument("--generations", type=int, help="raise the generation budget")
    resume.add_argument("--executor", choices=("inprocess", "process", "ray"),
                        help="continue on another executor (results do not depend on it)")
    resume.add_argument("--address", help="address of an existing Ray cluster (with --executor ray)")
    resume.add_argument("--cap", action="append", default=[], metavar="KEY=VALUE",
                        help="raise an LLM cap, e.g. inner_max_tokens=200000 or author_max_usd=5 (repeatable)")
    add_store_argument(resume)

    show = sub.add_parser("show", help="summary and lineage of a run")
    show.add_argument("run_id")
    add_store_argument(show)

    export = sub.add_parser("export", help="write results.tsv of a run (and only what else is asked for)")
    export.add_argument("run_id", nargs="+", metavar="RUN",
                        help="the run (several runs only with --finetune alone)")
    export.add_argument("--out", type=Path,
                        help="results.tsv, one row per judged candidate (the default when nothing else is asked)")
    export.add_argument("--trials", type=Path, metavar="FILE.csv",
                        help="every recorded trial as CSV: stack, panel, instance, group, seed, index, each "
                             "parameter (simplex weights as name.domain), score, kept, source, changed_by")
    export.add_argument("--recipe", type=Path, help="also write the run's recipe (`bilevel import` reads it)")
    export.add_argument("--sampler", type=Path, help="also write a kept stack as an optuna sampler file")
    export.add_argument("--optunahub", type=Path, metavar="DIR",
                        help="also write a kept stack as an OptunaHub sampler package into DIR")
    export.add_argument("--finetune", type=Path, metavar="DIR",
                        help="write the runs' judged author answers and proposer choices as fine-tuning data "
                             "(mlx-lm chat JSONL, preference pairs, manifest; no sealed-test data) into DIR")
    export.add_argument("--coco", type=Path, metavar="DIR",
                        help="also write COCO data (cocoex.Observer) of the stack and the baseline on the "
                             "test panel into DIR, for `python -m cocopp DIR/*` (bbob runs; bilevel[coco])")
    export.add_argument("--stack", metavar="ID",
                        help="the stack for --sampler/--optunahub/--coco (default: the final stack)")
    add_store_argument(export)

    runs = sub.add_parser("runs", help="list the runs in a store")
    add_store_argument(runs)

    check = sub.add_parser("sandbox-check", help="compile and conformance-check one mechanism source file")
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true",
                       help="print one JSON object (status, layer, message, timings, active layers)")
    check.add_argument("--examples", type=int, default=12, help="random contexts to try (default: %(default)s)")

    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP)
        module.add_arguments(p)
    return ap


def _command_modules() -> list[Any]:
    return [importlib.import_module(name) for name in MODULES]


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    run: dict[str, Any] = {}
    for flag, key in (("benchmark", "benchmark"), ("author", "author"), ("generations", "generations"),
                      ("candidates", "candidates"), ("seed", "seed"), ("workers", "workers"),
                      ("wall_time", "wall_time_s"), ("executor", "executor"), ("address", "address")):
        value = getattr(args, flag)
        if value is not None:
            run[key] = value
    if args.no_level15:
        run["level15"] = False
    llm: dict[str, Any] = {}
    if args.model:
        llm["model"] = args.model
        run.setdefault("author", "llm")
    if args.author_model:
        llm["author_model"] = args.author_model
    if getattr(args, "adapter", None) is not None:
        llm["adapter"] = str(args.adapter)
    out: dict[str, Any] = {"run": run}
    if llm:
        out["llm"] = llm
    if args.budget is not None:
        out["inner"] = {"budget": args.budget}
    return out


def _print_summary(lines: Sequence[str]) -> None:
    print("--- summary ---")
    for line in lines:
        say(line)
    sys.stdout.flush()


def cmd_run(args: argparse.Namespace) -> int:
    spec = with_paths(load_spec(args.spec, _run_overrides(args)), args.spec, args.library)
    store, run_id = new_run(args.store, spec, yes=args.yes)  # checks first: a refused run leaves no store
    print(f"run: {run_id}", flush=True)
    return _execute(store, run_id)


_CURRENT: dict[str, str] = {}  # the run this process executes and its --store suffix, for the interrupt hint


def _execute(store: Store, run_id: str) -> int:
    _CURRENT["run"] = run_id
    _CURRENT["store"] = store_hint(store.path.parent)
    with Progress() as progress:
        summary = execute(store, run_id, progress=progress.stage, on_eval=progress.evaluation,
                          on_failed=progress.failures)
    _print_summary(summary.lines())
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    store = open_existing(args.store)
    store.run(args.run_id)
    overrides: dict[str, Any] = {}
    if args.wall_time is not None:
        overrides["wall_time_s"] = args.wall_time
    if args.generations is not None:
        overrides["generations"] = args.generations
    for flag in ("executor", "address"):
        if getattr(args, flag, None) is not None:
            overrides[flag] = getattr(args, flag)
    caps = _caps(args.cap)
    if overrides or caps:
        n = len(store.events(args.run_id, "resume"))
        changes: dict[str, Any] = {"run": overrides} if overrides else {}
        if caps:
            changes["llm"] = caps
        store.recorder(args.run_id).record_event(f"resume:{n}", "resume", {"overrides": changes})
        effective_spec(store, args.run_id)  # validates the overrides before any work
    print(f"run: {args.run_id}", flush=True)
    return _execute(store, args.run_id)


def _caps(items: Sequence[str]) -> dict[str, Any]:
    """``--cap KEY=VALUE`` items as [llm] overrides (numbers; only the *_max_* keys)."""
    from bilevel.runs.spec import DEFAULTS

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "_max_" not in key or key not in DEFAULTS["llm"]:
            allowed = ", ".join(k for k in DEFAULTS["llm"] if "_max_" in k)
            raise CliError(f"--cap {item!r}: use KEY=VALUE with KEY one of {allowed}")
        try:
            number = float(value)
        except ValueError:
            raise CliError(f"--cap {item!r}: {value!r} is not a number") from None
        out[key] = int(number) if isinstance(DEFAULTS["llm"][key], int) else number
    return out


def cmd_show(args: argparse.Namespace) -> int:
    store = open_existing(args.store)
    row = store.run(args.run_id)
    summary = last_summary(store, args.run_id)
    say(f"run: {row.run_id}")
    replays = store.events(args.run_id, "replay_of")
    if replays:
        say(f"replay of {replays[0].get('original')}")
    say(f"benchmark: {row.spec['run']['benchmark']}")
    say(f"manifest: {row.manifest_hash[:16]}")
    say(f"sandbox layers: {sandbox_layers_line(store, args.run_id)}")
    if summary is None:
        status = run_status(store, args.run_id, None)
        say(f"status: {status} (bilevel resume {row.run_id}{store_hint(args.store)} once the cause is fixed)")
        say(f"failed_trials: {failed_trials_line(failure_counts(store, args.run_id))}")
    else:
        for k, v in summary.items():
            if k not in ("run", "benchmark", "manifest"):
                say(f"{k}: {v}")
        from bilevel.runs.rsi import rsi_metrics  # recursive-self-improvement metrics (issue 5)

        for line in rsi_metrics(store, args.run_id).lines():
            say(line)
    say("ledger:")
    for line in ledger_lines(store.ledger(args.run_id), effective_spec(store, args.run_id).to_json()):
        say("  " + line)
    say("lineage:")
    for line in lineage_lines(store, args.run_id):
        say("  " + line)
    from bilevel.runs.author_attempts import truncation_lines  # answers cut at the token limit (issue 12)

    cut = truncation_lines(store, args.run_id)
    if cut:
        say("truncated calls:")
        for line in cut:
            say("  " + line)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = open_existing(args.store)
    if args.finetune is not None:  # issue 16: one or more runs as training data
        from bilevel.runs.finetune_export import write_finetune

        for line in write_finetune(store, args.run_id, args.finetune):
            print(line)
    others = (args.out, args.recipe, args.sampler, args.optunahub, args.trials, args.coco)
    if args.finetune is not None and all(a is None for a in others):
        return 0
    if len(args.run_id) > 1:
        raise CliError(f"export got {len(args.run_id)} runs: several runs go only with --finetune alone; "
                       "give one run for --out/--recipe/--sampler/--optunahub/--trials/--coco")
    args.run_id = args.run_id[0]
    store.run(args.run_id)
    asked = (args.recipe, args.sampler, args.optunahub, args.trials, args.coco)
    out = args.out if args.out is not None or any(a is not None for a in asked) else Path("results.tsv")
    if out is not None:
        out.write_text(results_tsv(store, args.run_id), encoding="utf-8")
        print(f"wrote {out}")
    if args.trials is not None:
        from bilevel.runs.found import write_trials_csv

        n = write_trials_csv(store, args.run_id, args.trials)
        print(f"wrote {args.trials} ({n} trials, one row each)")
    from bilevel.runs.exports import export_extras  # recipe and sampler exports (issue 5)

    for line in export_extras(store, args.run_id, args.recipe, args.sampler, args.stack, args.optunahub):
        print(line)
    if args.coco is not None:
        from bilevel.runs.coco_export import export_coco  # COCO interop (issue 14)

        for line in export_coco(store, args.run_id, args.coco, args.stack):
            print(line)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    store = open_existing(args.store)
    say("\t".join(("id", "date", "status", "benchmark", "author", "kept", "failed_trials")))
    for run_id in store.run_ids():
        say("\t".join(_run_cells(store, run_id)))
    return 0


def _run_cells(store: Store, run_id: str) -> list[str]:
    """One row of ``bilevel runs``: id, date (UTC), status, benchmark, author, kept, failed trials."""
    import time

    row = store.run(run_id)
    summary = last_summary(store, run_id)
    kept = "-" if summary is None else str(summary.get("kept", "?"))
    date = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row.created))
    run = row.spec.get("run", {})
    counts = failure_counts(store, run_id)
    failed = f"{sum(c.failed for c in counts.values())}/{sum(c.trials for c in counts.values())}"
    return [run_id, date, run_status(store, run_id, summary), str(run.get("benchmark", "?")),
            str(run.get("author", "?")), kept, failed]


def run_status(store: Store, run_id: str, summary: dict[str, Any] | None) -> str:
    """``finished (...)``, ``failed: ...`` or ``not finished``, and ``replay of RUN`` for a replay."""
    errors = store.events(run_id, "run_error")
    if summary is not None:
        status = f"finished ({summary.get('stopped') or 'done'})"
    elif errors:
        status = f"failed: {str(errors[-1].get('message', ''))[:120]}"
    else:
        status = "not finished"
    replays = store.events(run_id, "replay_of")
    return status + (f", replay of {replays[0].get('original')}" if replays else "")


def cmd_sandbox_check(args: argparse.Namespace) -> int:
    from bilevel.judge.conformance import check_conformance

    try:
        source = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from exc
    if args.examples < 1:
        raise CliError("--examples must be at least 1")
    report = check_conformance(source, max_examples=args.examples).to_json()
    if args.json:
        print(strict_json(report, sort_keys=True))
    else:
        say(f"status: {report['status']}")
        if report["layer"]:
            say(f"stopped by: {report['layer']}")
        say(f"message: {report['message']}")
        say(f"hooks: {', '.join(report.get('hooks', []))}")
        say(f"sandbox layers: {', '.join(report['layers']) or '(no worker started)'}")
        say("timings: " + ", ".join(f"{k}={v:.4g}" for k, v in report["timings"].items()))
        if report.get("example"):
            say("example: " + strict_json(report["example"])[:2000])
    return 0 if report["ok"] else 1


COMMANDS = {"run": cmd_run, "resume": cmd_resume, "show": cmd_show, "export": cmd_export, "runs": cmd_runs,
            "sandbox-check": cmd_sandbox_check}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line; an unknown option gets the subcommand's usage and a close match (exit 2)."""
    ap = _parser()
    args, extra = ap.parse_known_args(argv)
    if extra:
        sub = _subparser(ap, args.command)
        options = [o for o in sub._option_string_actions if o.startswith("--")]
        hints = [m for e in extra for m in difflib.get_close_matches(e.split("=", 1)[0], options, n=1)]
        tail = f"; did you mean {', '.join(hints)}?" if hints else ""
        sub.error(f"unrecognized arguments: {' '.join(extra)}{tail}")
    return args


def _subparser(ap: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in ap._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]  # type: ignore[no-any-return]
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    stop.install()  # SIGTERM and SIGHUP stop a run like Ctrl-C: clean and resumable
    commands = dict(COMMANDS)
    commands.update({m.NAME: m.run for m in _command_modules()})
    try:
        return commands[args.command](args)
    except (CliError, SpecError, StoreError, JudgeError, OuterError, SandboxError, ChatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        if "run" in _CURRENT:
            hint = f"continue with: bilevel resume {_CURRENT['run']}{_CURRENT['store']}"
        else:
            hint = "no run was started"
        print(f"\ninterrupted; {hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
