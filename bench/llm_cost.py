"""What a run with the model in both loops costs, before and after batching and prompt caching (issue 12).

Runs the same scripted run twice through a loopback Messages API server and the real ``anthropic``
client, and reads calls, tokens and dollars per level from each run's ledger:

- before: ``[llm] proposals_per_call = 1`` and ``prompt_cache = false`` (one proposal per call, no
  cache: the engine's behaviour before issue 12);
- after: the defaults (8 proposals per call, Anthropic prompt caching).

The server answers as ``scripted:`` does, with author answers of a capable model's size (built-in
mechanisms, 3-4k characters, and one draft the sandbox refuses) and tokens counted at 3.6 characters
each (about a real tokenizer: ``tests/llm_servers.py``), and keeps Anthropic's prompt cache. Prices are
the table's (``outer/llm/pricing.py``) for ``--model``. Each arm also prints the estimate ``bilevel run``
printed before it started (``runs/estimate.py``), next to what the ledger measured.

    .venv/bin/python bench/llm_cost.py [--generations 3] [--spec FILE] [--model anthropic:claude-sonnet-4-5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, header

sys.path.insert(0, str(ROOT / "tests"))  # the loopback servers live beside the tests

from llm_servers import AnthropicServer, realistic_script, realistic_tokens  # noqa: E402

from bilevel.runs.cli import main as cli  # noqa: E402
from bilevel.runs.store import Store  # noqa: E402

SPEC = """\
# bench/llm_cost.py: a small BBOB run with the model in both loops
[run]
candidates = 3
workers = 2
seed = 1

[benchmark]
functions = [2, 8, 15, 21]
dimensions = [2, 5]
instance_ids = [1, 2, 3, 4, 5, 6]

[inner]
budget = 60

[panels]
search_instances = 2
validation_instances = 8
test_instances = 8
seeds_per_instance = 1

[judge]
n_boot = 500
stage1_pairs = 4
"""
ARMS = (("before", "proposals_per_call = 1\nprompt_cache = false\n"), ("after", ""))
KEYS = ("calls", "tokens_in", "tokens_out", "cache_write", "cache_read", "cost_usd")


def _arm(spec_text: str, extra: str, model: str, generations: int,
         workdir: Path) -> tuple[dict[str, dict[str, Any]], str, float]:
    """(ledger per level, the estimate's lines, seconds) of one run through a fresh loopback server."""
    spec = workdir / "spec.toml"
    spec.write_text(spec_text + "\n[llm]\nbackoff_s = 0.001\n" + extra, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with AnthropicServer(tokens=realistic_tokens, script=realistic_script(), lifetime_s=7200) as server:
        os.environ["ANTHROPIC_API_KEY"] = "sk-bench"
        os.environ["ANTHROPIC_BASE_URL"] = server.url
        start = time.monotonic()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli(["run", "--spec", str(spec), "--store", str(workdir / "store"), "--model", model,
                        "--generations", str(generations), "--yes"])
        seconds = time.monotonic() - start
    if code != 0 or "stopped: completed" not in out.getvalue():
        raise SystemExit(f"the run failed ({code}):\n{err.getvalue()[-2000:]}")
    run_id = out.getvalue().splitlines()[0].split(": ", 1)[1]
    estimate = "\n".join(line for line in err.getvalue().splitlines()
                         if line.startswith(("estimate", "  inner", "  author", "  total")))
    return Store.in_dir(workdir / "store").ledger(run_id), estimate, seconds


def _row(arm: str, level: str, v: dict[str, Any]) -> str:
    return (f"| {arm} | {level} | {int(v['calls']):,} | {int(v['tokens_in']):,} | {int(v['tokens_out']):,} | "
            f"{int(v['cache_write']):,} | {int(v['cache_read']):,} | ${v['cost_usd']:.2f} |")


def _total(ledger: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {k: sum(v.get(k, 0) for v in ledger.values()) for k in KEYS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--spec", type=Path, help="a spec file instead of the built-in one ([llm] keys are added)")
    ap.add_argument("--model", default="anthropic:claude-sonnet-4-5")
    args = ap.parse_args(argv)
    header("LLM cost of a run with the model in both loops: before (1 proposal per call, no prompt cache) "
           "and after (the defaults)")
    spec_text = args.spec.read_text(encoding="utf-8") if args.spec else SPEC
    print(f"# model {args.model} at the price table's prices; spec: {args.spec or 'built in'}, "
          f"{args.generations} generations")
    ledgers: dict[str, dict[str, dict[str, Any]]] = {}
    lines = ["| arm | level | calls | tokens in | tokens out | cache written | cache read | dollars |",
             "|---|---|---|---|---|---|---|---|"]
    for arm, extra in ARMS:
        with tempfile.TemporaryDirectory(prefix=f"llm-cost-{arm}-") as tmp:
            ledger, estimate, seconds = _arm(spec_text, extra, args.model, args.generations, Path(tmp))
        ledgers[arm] = ledger
        print(f"# {arm}: {seconds:.0f} s; the estimate printed before the run:")
        print("\n".join(f"#   {line}" for line in estimate.splitlines()))
        for level in ("author", "inner"):
            lines.append(_row(arm, level, {k: ledger.get(level, {}).get(k, 0) for k in KEYS}))
        lines.append(_row(arm, "total", _total(ledger)))
    print("\n".join(lines))
    before, after = ledgers["before"], ledgers["after"]
    for level in ("inner", "author"):
        b, a = before.get(level, {}), after.get(level, {})
        if a.get("calls") and a.get("cost_usd"):
            print(f"ratio before/after, {level}: calls {b['calls'] / a['calls']:.2f}x, "
                  f"dollars {b['cost_usd'] / a['cost_usd']:.2f}x")
    tb, ta = _total(before), _total(after)
    print(f"ratio before/after, total: calls {tb['calls'] / ta['calls']:.2f}x, dollars "
          f"{tb['cost_usd'] / ta['cost_usd']:.2f}x (${tb['cost_usd']:.2f} -> ${ta['cost_usd']:.2f} for "
          f"{args.generations} generations)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
