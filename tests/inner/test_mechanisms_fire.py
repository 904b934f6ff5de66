"""Each built-in mechanism, loaded through the sandbox, measurably changes the search on a benchmark.

BBOB for every mechanism that works on any space; a small data-mix objective (a simplex block of
four domains and one float) for the one that only acts on a mix.
"""

from __future__ import annotations

import pytest

from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.space import Space
from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.stack import Mechanism
from bilevel.mechanisms.library import BUILTIN_NAMES, load_source

BENCH = get_benchmark("bbob", {"functions": [8], "dimensions": [5], "instance_ids": [1]})
SETTINGS = InnerSettings(budget=40)
MIX_ONLY = {"simplex_thompson"}
MIX_TARGET = {"web": 0.1, "code": 0.6, "books": 0.2, "chat": 0.1}


class MixObjective:
    """A data mix and a learning rate; the score is the squared distance to a hidden best mix, plus a bowl."""

    space = Space.from_json({"params": [
        {"name": "mix", "type": "simplex", "domains": list(MIX_TARGET)},
        {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True}]})

    def evaluate(self, config: dict[str, object]) -> float:
        mix = config["mix"]
        assert isinstance(mix, dict)
        lr = float(config["lr"])  # type: ignore[arg-type]
        return sum((mix[d] - w) ** 2 for d, w in MIX_TARGET.items()) + 0.01 * (lr - 0.01) ** 2


def _run(mechanisms: list[Mechanism], seed: int, mix: bool = False):  # type: ignore[no-untyped-def]
    objective = MixObjective() if mix else BENCH.objective(BENCH.instances()[0], seed)
    return run_inner(objective, [(m.id, m.source) for m in mechanisms], SETTINGS, seed)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_fires_and_changes_the_search(name: str) -> None:
    mech = Mechanism(name, load_source(name))
    mix = name in MIX_ONLY
    plain = _run([], seed=11, mix=mix)
    with_mech = _run([mech], seed=11, mix=mix)
    events = [e for t in with_mech.trials for e in t.hooks if e.mechanism == mech.id]
    assert events, f"{name} never ran"
    assert all(e.status == "ok" for e in events), [e for e in events if e.status != "ok"][:3]
    changed = [e for e in events if e.changed]
    assert changed, f"{name} ran {len(events)} hooks but changed nothing"
    assert [t.config for t in with_mech.trials] != [t.config for t in plain.trials]


def test_inner_run_is_deterministic_with_mechanisms() -> None:
    mechs = [Mechanism(n, load_source(n)) for n in ("tabu", "trust_region", "elite_crossover")]
    a = _run(mechs, seed=5)
    b = _run(mechs, seed=5)
    assert [t.to_json() for t in a.trials] == [t.to_json() for t in b.trials]


def test_inner_run_resumes_to_the_same_trials() -> None:
    mechs = [Mechanism(n, load_source(n)) for n in ("ucb_bandit", "restart_plateau", "lhs_design")]
    whole = _run(mechs, seed=9)
    instance = BENCH.instances()[0]
    resumed = run_inner(BENCH.objective(instance, 9), [(m.id, m.source) for m in mechs], SETTINGS, 9,
                        resume_from=whole.trials[:17])
    assert [t.to_json() for t in resumed.trials] == [t.to_json() for t in whole.trials]


def test_a_reused_worker_gives_the_same_run_as_a_fresh_one() -> None:
    from bilevel.inner.loop import SessionPool

    mechs = [Mechanism(n, load_source(n)) for n in ("tabu", "restart_plateau")]
    instance = BENCH.instances()[0]
    sources = [(m.id, m.source) for m in mechs]
    fresh = run_inner(BENCH.objective(instance, 4), sources, SETTINGS, 4, pool=None)
    pool = SessionPool()
    try:
        run_inner(BENCH.objective(instance, 8), sources[::-1], SETTINGS, 8, pool=pool)  # leaves a used worker
        reused = run_inner(BENCH.objective(instance, 4), sources, SETTINGS, 4, pool=pool)
    finally:
        pool.close()
    assert [t.to_json() for t in reused.trials] == [t.to_json() for t in fresh.trials]
