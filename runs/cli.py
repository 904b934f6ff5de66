"""The ``bilevel`` command line."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from judge.errors import JudgeError
from outer.errors import OuterError
from runs.commands import MODULES
from runs.driver import create_run, effective_spec, execute
from runs.progress import Progress
from runs.spec import SpecError, load_spec
from runs.store import Store, StoreError
from runs.views import last_summary, lineage_lines, results_tsv
from sandbox.outcome import SandboxError

DEFAULT_STORE = Path("bilevel-runs")
EXIT_USAGE = 2


class CliError(Exception):
    """A mistake on the command line; printed as ``error: ...`` with exit status 2."""


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help="run store directory (default: %(default)s)")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bilevel", description="Bilevel meta-research engine.")
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start a run (embedded defaults, a TOML spec, and flags that override it)")
    run.add_argument("--spec", type=Path, help="TOML spec file")
    run.add_argument("--benchmark", help="benchmark name (e.g. bbob)")
    run.add_argument("--author", help="mechanism author (e.g. offline)")
    run.add_argument("--generations", type=int)
    run.add_argument("--candidates", type=int, help="candidates per generation")
    run.add_argument("--seed", type=int)
    run.add_argument("--budget", type=int, help="trials per inner run")
    run.add_argument("--workers", type=int, help="evaluation processes")
    run.add_argument("--wall-time", type=float, help="hard wall-time budget in seconds (0: none)")
    run.add_argument("--no-level15", action="store_true", help="switch Level 1.5 config adjustment off")
    _add_store(run)

    resume = sub.add_parser("resume", help="continue a stopped or killed run")
    resume.add_argument("run_id")
    resume.add_argument("--wall-time", type=float, help="a new wall-time budget for this session")
    resume.add_argument("--generations", type=int, help="raise the generation budget")
    _add_store(resume)

    show = sub.add_parser("show", help="summary and lineage of a run")
    show.add_argument("run_id")
    _add_store(show)

    export = sub.add_parser("export", help="write results.tsv of a run")
    export.add_argument("run_id")
    export.add_argument("--out", type=Path, default=Path("results.tsv"))
    _add_store(export)

    runs = sub.add_parser("runs", help="list the runs in a store")
    _add_store(runs)

    check = sub.add_parser("sandbox-check", help="compile and conformance-check one mechanism source file")
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="print one JSON object")

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
                      ("wall_time", "wall_time_s")):
        value = getattr(args, flag)
        if value is not None:
            run[key] = value
    if args.no_level15:
        run["level15"] = False
    out: dict[str, Any] = {"run": run}
    if args.budget is not None:
        out["inner"] = {"budget": args.budget}
    return out


def _print_summary(lines: Sequence[str]) -> None:
    print("--- summary ---")
    for line in lines:
        print(line)
    sys.stdout.flush()


def cmd_run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec, _run_overrides(args))
    store = Store.in_dir(args.store)
    run_id = create_run(store, spec)
    print(f"run: {run_id}", flush=True)
    return _execute(store, run_id)


def _execute(store: Store, run_id: str) -> int:
    with Progress() as progress:
        summary = execute(store, run_id, progress=progress.stage, on_eval=progress.evaluation)
    _print_summary(summary.lines())
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    store = Store.in_dir(args.store)
    store.run(args.run_id)
    overrides: dict[str, Any] = {}
    if args.wall_time is not None:
        overrides["wall_time_s"] = args.wall_time
    if args.generations is not None:
        overrides["generations"] = args.generations
    if overrides:
        n = len(store.events(args.run_id, "resume"))
        store.recorder(args.run_id).record_event(f"resume:{n}", "resume", {"overrides": {"run": overrides}})
        effective_spec(store, args.run_id)  # validates the overrides before any work
    print(f"run: {args.run_id}", flush=True)
    return _execute(store, args.run_id)


def cmd_show(args: argparse.Namespace) -> int:
    store = Store.in_dir(args.store)
    row = store.run(args.run_id)
    summary = last_summary(store, args.run_id)
    print(f"run: {row.run_id}")
    print(f"benchmark: {row.spec['run']['benchmark']}")
    print(f"manifest: {row.manifest_hash[:16]}")
    if summary is None:
        print("status: not finished (bilevel resume " + row.run_id + ")")
    else:
        for k, v in summary.items():
            if k not in ("run", "benchmark", "manifest"):
                print(f"{k}: {v}")
    print("lineage:")
    for line in lineage_lines(store, args.run_id):
        print("  " + line)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = Store.in_dir(args.store)
    store.run(args.run_id)
    args.out.write_text(results_tsv(store, args.run_id), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    store = Store.in_dir(args.store)
    for run_id in store.run_ids():
        summary = last_summary(store, run_id) or {}
        print(f"{run_id}\tkept={summary.get('kept', '?')}\tval={summary.get('val_improvement', '?')}")
    return 0


def cmd_sandbox_check(args: argparse.Namespace) -> int:
    from judge.conformance import check_conformance

    try:
        source = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from exc
    report = check_conformance(source).to_json()
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(f"status: {report['status']}")
        print(f"message: {report['message']}")
        print(f"hooks: {', '.join(report.get('hooks', []))}")
        if report.get("example"):
            print("example: " + json.dumps(report["example"])[:2000])
    return 0 if report["ok"] else 1


COMMANDS = {"run": cmd_run, "resume": cmd_resume, "show": cmd_show, "export": cmd_export, "runs": cmd_runs,
            "sandbox-check": cmd_sandbox_check}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = dict(COMMANDS)
    commands.update({m.NAME: m.run for m in _command_modules()})
    try:
        return commands[args.command](args)
    except (CliError, SpecError, StoreError, JudgeError, OuterError, SandboxError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted; continue with: bilevel resume RUN", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
