"""The reference part of the author prompt, generated from the code so it cannot drift.

Each section is read from the module that defines the fact at the moment the prompt is built:
spacekit's signatures and docstrings (``inspect``), the facades' allow-lists (``sandbox.facades``),
the policy's rules (small probes compiled under ``sandbox.policy``), the ctx/state/trial dicts (built
by the sandbox worker's own ``ctx`` code from this run's traces), the conformance check's description
(``judge.conformance``), and which guidance keys the active base proposer honours (probed by running
the numeric proposers, and read from the LLM proposer's own prompt). Called by ``LLMAuthor`` once per
author call; nothing here is a hand-written copy of a rule.
"""

from __future__ import annotations

import inspect
import json
import random
from typing import Any

from bilevel.inner import llm_proposer
from bilevel.inner.proposer_factory import make_proposer
from bilevel.inner.records import Trial
from bilevel.inner.search_config import SearchConfig
from bilevel.inner.space import Space
from bilevel.judge import conformance
from bilevel.mechanisms import spacekit
from bilevel.mechanisms.contract import GUIDANCE_KEYS
from bilevel.outer.authors.brief import AuthorBrief
from bilevel.sandbox import facades, policy
from bilevel.sandbox.guards import namespace_members
from bilevel.sandbox.hooks import Worker
from bilevel.sandbox.restricted_builtins import BASE_BUILTINS

# Small sources compiled under the policy; the prompt states what the policy does with each.
POLICY_PROBES: tuple[tuple[str, str], ...] = (
    ("augmented assignment on an item (state['n'] += 1)", "def guide(ctx, state):\n    state['n'] += 1\n"),
    ("augmented assignment on a name (n += 1)", "def guide(ctx, state):\n    n = 0\n    n += 1\n"),
    ("a class definition (even one that only holds constants)", "class Box:\n    SIZE = 3\n\n"
                                                                 "def guide(ctx, state):\n    return None\n"),
    ("a name starting with an underscore (_cache = {})", "_cache = {}\n\ndef guide(ctx, state):\n    return None\n"),
    ("an attribute starting with an underscore (x.__class__)", "def guide(ctx, state):\n    return ctx.__class__\n"),
    ("setting an attribute (ctx.x = 1)", "def guide(ctx, state):\n    ctx.x = 1\n"),
    ("item assignment into your own dict (state['n'] = 1)", "def guide(ctx, state):\n    state['n'] = 1\n"),
    ("a lambda, a comprehension, a nested function",
     "def guide(ctx, state):\n    f = lambda x: x\n    def g(y):\n        return y\n"
     "    return None if [f(i) for i in range(2)] else g(1)\n"),
    ("try/except", "def guide(ctx, state):\n    try:\n        return None\n    except ValueError:\n        return None\n"),
    ("a generator function (yield)", "def gen():\n    yield 1\n\ndef guide(ctx, state):\n    return None\n"),
    ("calling open()", "def guide(ctx, state):\n    open('x')\n"),
    ("calling getattr()", "def guide(ctx, state):\n    return getattr(ctx, 'x')\n"),
    ("import of a module outside the list (import os)", "import os\n\ndef guide(ctx, state):\n    return None\n"),
    ("a module with no hook function", "X = 1\n"),
)


def _doc(obj: Any) -> str:
    return inspect.getdoc(obj) or "(no docstring)"


def _dims(brief: AuthorBrief) -> str:
    dims = [str(d) for d in brief.dimensions] or [str(spacekit.dims(brief.space))]
    return dims[0] if len(dims) == 1 else ", ".join(dims[:-1]) + " or " + dims[-1]


def benchmark_section(brief: AuthorBrief) -> str:
    space = brief.space
    groups = ", ".join(brief.groups) or "(one group)"
    return "\n".join([
        "## The benchmark and the budget",
        f"- benchmark: {brief.benchmark}; its score: {brief.score_text}. Every score is minimised.",
        f"- each inner run has a budget of {brief.budget} trials; review may reject a candidate at most "
        f"{brief.max_rejections} times per trial (then the last candidate runs anyway).",
        f"- dimensions: the instances of this benchmark have {_dims(brief)} unit coordinates (spacekit.dims); the "
        f"space shown below, of the first search-panel instance, has {len(spacekit.names(space))} parameters and "
        f"{spacekit.dims(space)} coordinates. Read names and sizes from ctx[\"space\"], never hard-code them.",
        f"- instance groups on the search panel: {groups}; validation may use other instances of the same "
        "benchmark, so write for the benchmark, not for one instance.",
    ])


def space_section(brief: AuthorBrief) -> str:
    space = brief.space
    example = spacekit.decode(space, [0.5] * spacekit.dims(space))
    return "\n".join([
        "## The search space (ctx[\"space\"], JSON) of the first search-panel instance, and the format of a config",
        "```json", json.dumps(space, sort_keys=True), "```",
        "A config is a dict with a value for every parameter; the centre of this space "
        "(spacekit.decode(space, [0.5] * dims)) is:",
        "```json", json.dumps(example, sort_keys=True), "```",
        "The JSON form, as spacekit documents it:", _doc(spacekit),
    ])


def spacekit_section() -> str:
    lines = ["## spacekit (`import spacekit`): its public functions, signatures and docstrings"]
    for name in namespace_members(facades.SPACEKIT):
        fn = getattr(spacekit, name)
        lines += [f"### spacekit.{name}{inspect.signature(fn)}", _doc(fn)]
    return "\n".join(lines)


def modules_section() -> str:
    lines = ["## What you may import (each module is a facade: only these names exist)"]
    for name, ns in facades.build_modules(random.Random(0)).items():
        members = sorted(namespace_members(ns))
        lines.append(f"- {name}: {', '.join(members)}")
    lines.append("- builtins: " + ", ".join(sorted(n for n in BASE_BUILTINS if not n.startswith("_"))))
    lines.append("- not available (a policy violation unless you define the name yourself): "
                 + ", ".join(sorted(policy.UNAVAILABLE_NAMES)))
    return "\n".join(lines)


def _probe(source: str) -> str:
    """What the policy does with ``source``: compiled under it, then (our own probe, never model code) run
    once in-process under the restricted globals the worker builds, ``guide(ctx, state)`` included."""
    code, outcome = policy.compile_source(source, "<probe>")
    if code is None:
        return f"refused when compiled ({outcome.status.value}): {outcome.message}"
    glb = policy.restricted_globals(facades.build_modules(random.Random(0)))
    try:
        exec(code, glb)  # noqa: S102 - a fixed probe of ours, compiled under the policy
        glb["guide"]({"space": {"params": []}}, {})
    except policy.PolicyViolation as exc:
        return f"refused when run (policy_violation): {exc}"
    except Exception as exc:  # noqa: BLE001 - not the policy's refusal: plain Python said no
        return f"not refused by the policy, but it fails: {type(exc).__name__}: {exc}"
    finally:
        policy.take_violations()
    return "allowed"


def policy_section() -> str:
    lines = ["## The sandbox's rules (each line: a probe compiled under the sandbox policy, and what it did)"]
    lines += [f"- {label}: {_probe(source)}" for label, source in POLICY_PROBES]
    lines.append("Attribute reads are limited to the methods of plain data types and the facades' members.")
    return "\n".join(lines)


def limits_section(brief: AuthorBrief, max_chars: int) -> str:
    return "\n".join([
        "## Limits",
        f"- each hook call may take at most {brief.call_timeout_s:g} s (wall clock); a whole inner run at most "
        f"{brief.run_timeout_s:g} s; the worker's memory at most {brief.memory_bytes / 2**20:.0f} MiB. Going over "
        "is a fault charged to your mechanism.",
        f"- your source may be at most {max_chars} characters: a longer one is refused (never cut) and sent back.",
        f"- a failed answer (compile error, policy violation, failed conformance, over-long, truncated) gets up to "
        f"{brief.repairs} repairs with the failure shown to you.",
    ])


def _example_trials(brief: AuthorBrief, trials: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    if trials:
        return [dict(t) for t in trials]
    space = brief.space
    return [{"index": 0, "config": spacekit.decode(space, [0.5] * spacekit.dims(space)), "score": None,
             "kept": False, "source": "base:greedy"}]


def examples_section(brief: AuthorBrief, trials: tuple[dict[str, Any], ...]) -> str:
    """ctx, state and trial dicts as the sandbox worker builds them (its own ``Worker.ctx``)."""
    history = _example_trials(brief, trials)
    worker = Worker(out_fd=-1, max_value_bytes=0)
    worker.space, worker.budget = brief.space, brief.budget
    for trial in history:
        worker.record(trial)
    ctx = worker.ctx(len(history), {})
    return "\n".join([
        "## What your hooks receive: a real ctx, state and trial of this run (built by the worker's code from "
        "the first trials of a search-panel inner run)",
        f"ctx at trial_index {len(history)} (`ctx[\"space\"]` is the space above, elided here):",
        "```json", json.dumps({**ctx, "space": "..."}, sort_keys=True), "```",
        "state: `{}` when an inner run starts; it is your dict for that run (keep lists and numbers in it).",
        "trial (what observe gets; score null means the evaluation failed):",
        "```json", json.dumps(history[-1], sort_keys=True), "```",
        "review gets a candidate: a config like trial[\"config\"].",
    ])


def conformance_section() -> str:
    doc = _doc(conformance).split("\n\n")
    examples = inspect.signature(conformance.check_conformance).parameters["max_examples"].default
    return "\n".join([
        "## The conformance check your mechanism must pass before it is judged",
        "\n\n".join(doc[:3]),
        f"(up to {conformance.MAX_PARAMS} parameters and {conformance.MAX_HISTORY} past trials per example, "
        f"{examples} examples): your hooks must work on spaces other than this run's, so never assume its "
        "parameter names, count or types.",
    ])


def _proposals(space: Space, search: SearchConfig, guidance: dict[str, Any], incumbent: Trial) -> list[Any]:
    proposer = make_proposer(space, search, seed=0)
    return [proposer.propose(t, incumbent, guidance) for t in range(1, 7)]


def honoured_keys(space: Space, search: SearchConfig) -> dict[str, bool]:
    """Which guidance keys (and the search config's ``step_size``) change what the numeric base proposer
    proposes: probed by running it with and without each, from the same seed."""
    dims = space.dims
    incumbent = Trial(0, space.decode([0.5] * dims), 1.0, True, "base")
    plain = _proposals(space, search, {}, incumbent)
    probes: dict[str, dict[str, Any]] = {
        "focus": {"focus": [space.names[-1]]}, "freeze": {"freeze": list(space.names)},
        "step_scale": {"step_scale": 0.01}, "centre": {"centre": space.decode([0.1] * dims)}}
    out = {key: _proposals(space, search, probes[key], incumbent) != plain for key in GUIDANCE_KEYS if key in probes}
    other = search.replace(step_size=min(1.0, search.step_size * 3))
    out["step_size"] = _proposals(space, other, {}, incumbent) != plain
    return out


def _named_in_llm_prompt() -> tuple[list[str], bool]:
    """The guidance keys the LLM proposer's rules name, and whether its prompt shows the step size."""
    texts = [llm_proposer.prompt_texts(v) for v in (llm_proposer.PROMPT_VERSION, llm_proposer.BATCH_PROMPT_VERSION)]
    system = "".join(t[0] for t in texts)
    shown = any("step_size" in t[0] + t[1] for t in texts)
    return [k for k in GUIDANCE_KEYS if f'"{k}"' in system], shown


def proposer_section(brief: AuthorBrief) -> str:
    space = Space.from_json(brief.space)
    search = SearchConfig.from_json(brief.search)
    numeric = honoured_keys(space, search)
    used = [k for k, v in numeric.items() if v]
    unused = [k for k, v in numeric.items() if not v]
    lines = ["## The base proposer of this run (who proposes when no mechanism does)"]
    if brief.model_proposes:
        named, shows_step = _named_in_llm_prompt()
        lines += [
            "- the LLM proposes (`[llm] inner = \"model\"`): it is shown the merged guidance as JSON in its prompt; "
            f"its rules name {', '.join(named) or 'no guidance key'}; the host drops any change it makes to a "
            "frozen parameter. It applies its changes to the incumbent, so `centre` moves nothing it proposes"
            + ("." if shows_step else "; it never sees the search config's step_size or n_changes."),
            f"- its fallback ({search.strategy.value}) proposes the first trial and whenever the model's answers are "
            f"rejected; it honours {', '.join(used) or 'nothing'} and ignores {', '.join(unused) or 'nothing'} "
            "(probed: run with and without each, same seed).",
            "- so a mechanism that only returns guidance steers the model by advice alone; propose and review act "
            "directly.",
        ]
    else:
        lines += [f"- the numeric proposer `{search.strategy.value}` proposes (search config "
                  f"{json.dumps(brief.search, sort_keys=True)}); it honours {', '.join(used) or 'nothing'} and ignores "
                  f"{', '.join(unused) or 'nothing'} (probed: run with and without each, same seed)."]
    return "\n".join(lines)


def reference_text(brief: AuthorBrief, trials: tuple[dict[str, Any], ...], max_chars: int) -> str:
    """Every generated section, in the order the author prompt shows them."""
    return "\n\n".join([
        benchmark_section(brief), space_section(brief), proposer_section(brief), examples_section(brief, trials),
        spacekit_section(), modules_section(), policy_section(), limits_section(brief, max_chars),
        conformance_section(),
    ])
