"""The author prompt's reference is generated from the code: change the code and the prompt follows.

Each test changes one source of truth (a spacekit docstring, the numpy facade's allow-list, the
policy, the LLM proposer's prompt, a conformance constant) with monkeypatch and checks the
generated text changed with it, besides checking the section is there with the real values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bilevel.inner import llm_proposer
from bilevel.inner.search_config import SearchConfig, Strategy
from bilevel.inner.space import Space
from bilevel.judge import conformance
from bilevel.mechanisms import spacekit
from bilevel.outer.authors.brief import AuthorBrief
from bilevel.outer.authors.reference import (
    examples_section,
    honoured_keys,
    limits_section,
    modules_section,
    policy_section,
    proposer_section,
    reference_text,
    spacekit_section,
)
from bilevel.sandbox import facades, policy
from bilevel.sandbox.guards import Namespace

SPACE: dict[str, Any] = {"params": [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
    {"name": "layers", "type": "int", "low": 1, "high": 8, "log": False},
    {"name": "act", "type": "categorical", "choices": ["relu", "gelu"]},
    {"name": "mix", "type": "simplex", "domains": ["web", "code"]},
]}


def _brief(strategy: str = "greedy", model: bool = False, **kw: Any) -> AuthorBrief:
    fields: dict[str, Any] = {
        "benchmark": "datamix-lm", "score_text": "validation bits per byte above the bound, lower is better",
        "space": SPACE, "budget": 40, "max_rejections": 3, "call_timeout_s": 1.5, "run_timeout_s": 90.0,
        "memory_bytes": 1 << 29, "search": SearchConfig(strategy=Strategy(strategy)).to_json(), "model_proposes": model,
        "groups": ("g-web", "g-code"), "repairs": 2}
    return AuthorBrief(**{**fields, **kw})


TRIALS = ({"index": 0, "config": {"lr": 0.01, "layers": 2, "act": "relu", "mix": {"web": 0.5, "code": 0.5}},
           "score": 3.25, "kept": True, "source": "base:greedy-fallback"},)


def test_every_section_is_there_with_this_runs_values() -> None:
    text = reference_text(_brief(), TRIALS, 12_000)
    for header in ("## The benchmark and the budget", "## The search space (ctx[\"space\"], JSON)", "## The base proposer",
                   "## What your hooks receive", "## spacekit", "## What you may import", "## The sandbox's rules",
                   "## Limits", "## The conformance check"):
        assert header in text, header
    assert "benchmark: datamix-lm; its score: validation bits per byte above the bound" in text
    assert "budget of 40 trials" in text and "at most 3 times per trial" in text
    assert "has 4 parameters and 5 coordinates" in text  # the simplex block counts one per domain
    assert "instances of this benchmark have 3 or 5 unit coordinates" in reference_text(_brief(dimensions=(3, 5)), (), 1)
    assert json.dumps(SPACE, sort_keys=True) in text
    centre = spacekit.decode(SPACE, [0.5] * 5)
    assert json.dumps(centre, sort_keys=True) in text  # the format a config takes, decoded by spacekit itself
    assert "g-web, g-code" in text


def test_spacekit_section_follows_signatures_and_docstrings(monkeypatch: pytest.MonkeyPatch) -> None:
    text = spacekit_section()
    assert "### spacekit.decode(space: 'JSONSpace', vector: 'list[float]') -> 'JSONConfig'" in text
    assert spacekit.repair.__doc__ is not None and "nearest valid config" in text
    monkeypatch.setattr(spacekit.encode, "__doc__", "Encode, as the changed docstring now says.")
    assert "Encode, as the changed docstring now says." in spacekit_section()


def test_the_import_list_is_the_facades_own(monkeypatch: pytest.MonkeyPatch) -> None:
    text = modules_section()
    line = next(x for x in text.splitlines() if x.startswith("- numpy: "))
    assert set(line[len("- numpy: "):].split(", ")) == set(facades.NUMPY_NAMES) | {"linalg"}
    assert "- numpy.linalg: LinAlgError, cholesky" in text and "open" in text.split("not available")[1]
    monkeypatch.setattr(facades, "NUMPY", Namespace("numpy", {"mean": lambda x: x, "hypot_new": abs}))
    line = next(x for x in modules_section().splitlines() if x.startswith("- numpy: "))
    assert line == "- numpy: hypot_new, mean"


def test_the_rules_are_what_the_policy_does(monkeypatch: pytest.MonkeyPatch) -> None:
    text = policy_section()
    assert "state['n'] += 1): refused when compiled (policy_violation): Line 2: Augmented assignment of object items" \
        in text
    assert "only holds constants): refused when compiled (policy_violation): Line 1: class definitions" in text
    assert "(n += 1): allowed" in text and "import os): refused when run (policy_violation)" in text
    monkeypatch.setattr(policy, "UNAVAILABLE_NAMES", policy.UNAVAILABLE_NAMES - {"getattr"})
    changed = policy_section()
    assert "calling getattr(): not refused by the policy, but it fails: NameError" in changed

    def allow_classes(self: Any, node: Any) -> Any:
        return self.node_contents_visit(node)

    monkeypatch.setattr(policy.MechanismPolicy, "visit_ClassDef", allow_classes)
    assert "only holds constants): not refused by the policy, but it fails: NameError" in policy_section()


def test_limits_come_from_the_run() -> None:
    text = limits_section(_brief(), 9_000)
    assert "at most 1.5 s" in text and "at most 90 s" in text and "512 MiB" in text
    assert "at most 9000 characters" in text and "up to 2 repairs" in text


def test_examples_are_built_by_the_workers_code() -> None:
    text = examples_section(_brief(), TRIALS)
    ctx = json.loads(text.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert set(ctx) == {"space", "history", "incumbent", "trial_index", "budget", "guidance"}
    assert ctx["history"] == [TRIALS[0]] and ctx["incumbent"] == TRIALS[0] and ctx["trial_index"] == 1
    assert ctx["budget"] == 40


def test_the_base_proposer_section_says_what_it_honours(monkeypatch: pytest.MonkeyPatch) -> None:
    space = Space.from_json(SPACE)
    assert honoured_keys(space, SearchConfig(strategy=Strategy.GREEDY)) == dict.fromkeys(
        ("focus", "freeze", "step_scale", "centre", "step_size"), True)
    random_keys = honoured_keys(space, SearchConfig(strategy=Strategy.RANDOM))
    assert random_keys["freeze"] and not any(v for k, v in random_keys.items() if k != "freeze")
    numeric = proposer_section(_brief("random"))
    assert "the numeric proposer `random` proposes" in numeric
    assert "honours freeze and ignores focus, step_scale, centre, step_size" in numeric
    with_model = proposer_section(_brief("greedy", model=True))
    assert "the LLM proposes" in with_model and "its rules name focus, freeze, step_scale" in with_model
    assert "never sees the search config's step_size" in with_model
    original = llm_proposer.prompt_texts

    def without_step_scale(version: str = llm_proposer.PROMPT_VERSION) -> tuple[str, str, str]:
        system, user, digest = original(version)
        return system.replace('"step_scale"', "the scale"), user, digest

    monkeypatch.setattr(llm_proposer, "prompt_texts", without_step_scale)
    assert "its rules name focus, freeze;" in proposer_section(_brief("greedy", model=True))


def test_the_conformance_section_follows_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    text = reference_text(_brief(), (), 12_000)
    assert "hypothesis generates random examples" in text and "up to 6 parameters" in text
    monkeypatch.setattr(conformance, "MAX_PARAMS", 3)
    assert "up to 3 parameters" in reference_text(_brief(), (), 12_000)
