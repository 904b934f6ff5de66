"""Short inner runs of built-in stacks give the trials recorded before the one-exchange-per-trial protocol.

``trial_digests.json`` (next to this file) was written by this module's ``record()`` on the code before the
sandbox protocol changed (issue 15 item 1): for each stack, the sha256 of every trial's full record
(config, score, kept, source, rejections, every hook event and ``changed_by``) and of the configs alone.
A changed digest means the protocol changed what mechanisms see, what they propose or which of them
changed the search. Re-record only for a deliberate change of behaviour:
``.venv/bin/python tests/inner/test_trial_identity.py``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bilevel.inner.loop import InnerSettings, SessionPool, run_inner
from bilevel.inner.records import InnerResult
from bilevel.inner.space import Space
from bilevel.judge.benchmarks import get_benchmark
from bilevel.mechanisms.library import load_source

FIXTURE = Path(__file__).with_name("trial_digests.json")
BENCH = get_benchmark("bbob", {"functions": [8], "dimensions": [5], "instance_ids": [1]})
SETTINGS = InnerSettings(budget=30)
SEED = 3
STACKS: dict[str, tuple[str, ...]] = {
    "guides_and_a_review": ("tabu", "ucb_bandit", "trust_region"),
    "propose_guide_two_reviews": ("restart_plateau", "lhs_design", "sham", "tabu"),
    "proposers_only": ("quad_surrogate", "one_plus_one_es", "coord_step", "elite_crossover"),
    "design_then_adapt": ("halton_design", "cma_rank_one", "trust_region", "tabu"),
    "mix": ("simplex_thompson", "ucb_bandit", "tabu"),
}


class MixObjective:
    """A data mix and a learning rate (as in test_mechanisms_fire)."""

    target = {"web": 0.1, "code": 0.6, "books": 0.2, "chat": 0.1}
    space = Space.from_json({"params": [
        {"name": "mix", "type": "simplex", "domains": list(target)},
        {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True}]})

    def evaluate(self, config: dict[str, Any]) -> float:
        mix = config["mix"]
        return sum((mix[d] - w) ** 2 for d, w in self.target.items()) + 0.01 * (float(config["lr"]) - 0.01) ** 2


def _run(name: str) -> InnerResult:
    stack = STACKS[name]
    objective = MixObjective() if name == "mix" else BENCH.objective(BENCH.instances()[0], SEED)
    pool = SessionPool()
    try:
        return run_inner(objective, [(m, load_source(m)) for m in stack], SETTINGS, SEED, pool=pool)
    finally:
        pool.close()


def digests(result: InnerResult) -> dict[str, str]:
    def h(obj: Any) -> str:
        return hashlib.sha256(json.dumps(obj, sort_keys=True, allow_nan=True).encode()).hexdigest()

    return {"trials": h([t.to_json() for t in result.trials]), "configs": h([t.config for t in result.trials])}


def record() -> None:
    out = {name: digests(_run(name)) for name in STACKS}
    FIXTURE.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


@pytest.mark.parametrize("name", sorted(STACKS))
def test_trials_match_the_recorded_run(name: str) -> None:
    recorded = json.loads(FIXTURE.read_text())[name]
    result = _run(name)
    assert len(result.trials) == SETTINGS.budget
    assert any(t.changed_by for t in result.trials), "the stack never changed the search: a weak fixture"
    assert digests(result) == recorded


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    record()
