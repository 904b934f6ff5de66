"""The built-in mechanisms: the library loader, and each mechanism does what its docstring says.

Every mechanism runs in a real sandbox session (one worker process per test),
driven the way the inner loop drives it.
"""

from __future__ import annotations

import ast
import math
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bilevel.inner.space import Space
from bilevel.mechanisms import library, spacekit
from bilevel.mechanisms.contract import HOOK_NAMES
from bilevel.sandbox import SandboxSession, compile_mechanism

EXPECTED_HOOKS = {
    "tabu": ["review", "observe"],
    "ucb_bandit": ["guide", "observe"],
    "lhs_design": ["propose"],
    "restart_plateau": ["guide", "propose", "observe"],
    "trust_region": ["guide", "observe"],
    "elite_crossover": ["propose"],
    "quad_surrogate": ["propose"],
    "one_plus_one_es": ["propose", "observe"],
    "coord_step": ["propose", "observe"],
    "halton_design": ["propose", "observe"],
    "cma_rank_one": ["propose", "observe"],
    "simplex_thompson": ["propose", "observe"],
    "sham": ["review"],
}


def floats(n: int, low: float = 0.0, high: float = 1.0) -> dict[str, Any]:
    return {"params": [{"name": f"x{i}", "type": "float", "low": low, "high": high, "log": False} for i in range(n)]}


class Driver:
    """One mechanism in a sandbox session, called as the inner loop calls it."""

    def __init__(self, session: SandboxSession, space: dict[str, Any]) -> None:
        self.session = session
        self.space = space
        self.t = 0
        self.best: float | None = None

    def value(self, hook: str, candidate: dict[str, Any] | None = None, guidance: dict[str, Any] | None = None) -> Any:
        if hook == "guide":
            out = self.session.guide_all(self.t)["m"]
        else:
            out = self.session.call("m", hook, self.t, guidance or {}, candidate)
        assert out.ok, out
        return out.value

    def tell(self, config: dict[str, Any], score: float | None) -> dict[str, Any]:
        """Finish trial ``t`` with ``score`` (kept by the fixed rule) and move to the next index."""
        Space.from_json(self.space).validate(config)
        kept = score is not None and (self.best is None or score < self.best)
        if kept:
            self.best = score
        trial = {"index": self.t, "config": config, "score": score, "kept": kept, "source": "base:greedy"}
        outs = self.session.observe(trial)
        assert all(o.ok for o in outs.values()), outs
        self.t += 1
        return trial


@pytest.fixture
def drive() -> Iterator[Any]:
    sessions: list[SandboxSession] = []

    def make(name: str, space: dict[str, Any], budget: int = 60, seed: int = 0) -> Driver:
        session = SandboxSession([("m", library.load_source(name))], space, seed, budget)
        sessions.append(session)
        loaded = session.start()
        assert loaded["m"].ok, loaded["m"]
        return Driver(session, space)

    yield make
    for s in sessions:
        s.close()


# --------------------------------------------------------------------------- library
def test_library_names() -> None:
    assert library.BUILTIN_NAMES == ("tabu", "ucb_bandit", "lhs_design", "restart_plateau", "trust_region",
                                     "elite_crossover", "quad_surrogate", "one_plus_one_es", "coord_step",
                                     "halton_design", "cma_rank_one", "simplex_thompson")
    assert library.CONTROL_NAMES == ("sham", "restart_plateau")
    assert set(library.all_sources()) == set(library.BUILTIN_NAMES) | {"sham"}


def test_unknown_name_is_a_key_error_listing_the_names() -> None:
    with pytest.raises(KeyError) as info:
        library.load_source("annealing")
    text = str(info.value)
    assert "annealing" in text
    assert all(name in text for name in library.ALL_NAMES)


@pytest.mark.parametrize("name", library.ALL_NAMES)
def test_source_compiles_with_its_hooks_and_documents_its_tunables(name: str) -> None:
    source = library.load_source(name)
    out = compile_mechanism(source, name)
    assert out.ok, out
    assert out.value["hooks"] == EXPECTED_HOOKS[name]
    assert set(out.value["hooks"]) <= set(HOOK_NAMES)
    tree = ast.parse(source)
    doc = ast.get_docstring(tree)
    assert doc and len(doc) > 200
    tunables = [t.id for node in tree.body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name) and re.fullmatch(r"[A-Z][A-Z0-9_]*", t.id)]
    assert tunables, "a mechanism should expose UPPER_CASE tunables"
    missing = [t for t in tunables if t not in doc]
    assert not missing, f"tunables not documented in the docstring: {missing}"
    # A __future__ import compiles but is refused when the worker executes the import.
    assert "__future__" not in source


# --------------------------------------------------------------------------- lhs_design
def test_lhs_first_trials_form_a_latin_hypercube(drive: Any) -> None:
    space = {"params": [{"name": "a", "type": "float", "low": -5.0, "high": 5.0, "log": False},
                        {"name": "lr", "type": "float", "low": 1e-5, "high": 1e-1, "log": True},
                        {"name": "b", "type": "float", "low": 0.0, "high": 1.0, "log": False}]}
    d = drive("lhs_design", space, budget=60)
    n = min(12, max(4, round(0.15 * 60)))
    points = []
    rng = random.Random(1)
    for _ in range(n):
        config = d.value("propose")
        assert config is not None
        points.append(spacekit.encode(space, config))
        d.tell(config, rng.random())
    for j in range(3):
        strata = sorted(min(n - 1, int(u[j] * n)) for u in points)
        assert strata == list(range(n)), f"coordinate {j}: {strata}"
    assert d.value("propose") is None  # the design phase is over


def test_lhs_design_is_rebuilt_from_history_on_resume(drive: Any) -> None:
    space = floats(2)
    first = drive("lhs_design", space, budget=40)
    configs = []
    for _ in range(3):
        config = first.value("propose")
        configs.append(config)
        first.tell(config, 1.0)
    resumed = drive("lhs_design", space, budget=40)
    for config in configs:
        resumed.tell(config, 1.0)
    assert resumed.value("propose") == first.value("propose")


# --------------------------------------------------------------------------- tabu
def test_tabu_moves_a_repeat_of_a_recent_failure_away(drive: Any) -> None:
    space = floats(3)
    d = drive("tabu", space)
    incumbent = {"x0": 0.2, "x1": 0.2, "x2": 0.2}
    failed = {"x0": 0.7, "x1": 0.7, "x2": 0.7}
    d.tell(incumbent, 1.0)
    d.tell(failed, 5.0)
    moved = d.value("review", candidate=dict(failed))
    assert moved is not None and moved != failed
    Space.from_json(space).validate(moved)
    radius = 0.08  # TABU_RADIUS: the candidate is far from the incumbent, so the cap applies
    assert spacekit.distance(space, moved, failed) >= radius - 1e-9
    assert spacekit.distance(space, moved, incumbent) >= radius - 1e-9


def test_tabu_leaves_fresh_candidates_and_small_steps_alone(drive: Any) -> None:
    space = floats(3)
    d = drive("tabu", space)
    d.tell({"x0": 0.2, "x1": 0.2, "x2": 0.2}, 1.0)
    d.tell({"x0": 0.7, "x1": 0.7, "x2": 0.7}, 5.0)
    assert d.value("review", candidate={"x0": 0.9, "x1": 0.1, "x2": 0.5}) is None
    # A small step from the incumbent is not blocked by the incumbent itself.
    assert d.value("review", candidate={"x0": 0.21, "x1": 0.2, "x2": 0.2}) is None


def test_tabu_moves_an_exact_repeat_of_the_incumbent(drive: Any) -> None:
    space = floats(2)
    d = drive("tabu", space)
    incumbent = {"x0": 0.5, "x1": 0.5}
    d.tell(incumbent, 1.0)
    moved = d.value("review", candidate=dict(incumbent))
    assert moved is not None and moved != incumbent
    assert spacekit.distance(space, moved, incumbent) < 0.05  # a nudge, not a jump


# --------------------------------------------------------------------------- trust_region
def test_trust_region_grows_on_success_and_shrinks_on_failure(drive: Any) -> None:
    space = floats(2)
    d = drive("trust_region", space)
    assert d.value("guide") == {"step_scale": 1.0}
    score = 100.0
    for _ in range(3):  # SUCC_TOL improvements in a row
        score -= 1.0
        d.tell({"x0": 0.5, "x1": 0.5}, score)
    assert d.value("guide") == {"step_scale": 2.0}
    for _ in range(6):  # FAIL_TOL failures in a row
        d.tell({"x0": 0.5, "x1": 0.5}, 1000.0)
    assert d.value("guide") == {"step_scale": 1.0}
    for _ in range(6):
        d.tell({"x0": 0.5, "x1": 0.5}, 1000.0)
    assert d.value("guide") == {"step_scale": 0.5}


def test_trust_region_restarts_when_it_collapses(drive: Any) -> None:
    space = floats(1)
    d = drive("trust_region", space, budget=200)
    d.tell({"x0": 0.5}, 0.0)
    scales = []
    for _ in range(6 * 7):
        d.tell({"x0": 0.5}, 1.0)
        scales.append(d.value("guide")["step_scale"])
    # FAIL_TOL = 6 failures halve it: 1/2 .. 1/32, then halving below MIN_SCALE restarts it at 1.
    assert [scales[i] for i in range(5, 42, 6)] == [0.5, 0.25, 0.125, 0.0625, 0.03125, 1.0, 0.5]
    assert all(0.02 <= s <= 2.0 for s in scales)


# --------------------------------------------------------------------------- ucb_bandit
def test_ucb_focuses_on_the_parameter_whose_changes_paid_off(drive: Any) -> None:
    space = floats(5)
    d = drive("ucb_bandit", space)
    assert d.value("guide") is None  # nothing observed yet
    rng = random.Random(3)
    incumbent = {f"x{i}": 0.5 for i in range(5)}
    score = 100.0
    d.tell(dict(incumbent), score)
    for step in range(30):
        name = f"x{step % 5}"
        config = dict(incumbent)
        config[name] = rng.random()
        if name == "x3":  # only changes of x3 improve
            score -= 1.0 + rng.random()
            d.tell(config, score)
            incumbent = config
        else:
            d.tell(config, score + 1.0)
    assert d.value("guide") == {"focus": ["x3"]}


def test_ucb_gives_no_guidance_for_a_single_parameter(drive: Any) -> None:
    d = drive("ucb_bandit", floats(1))
    d.tell({"x0": 0.5}, 1.0)
    d.tell({"x0": 0.6}, 0.5)
    assert d.value("guide") is None


# --------------------------------------------------------------------------- restart_plateau
def test_restart_after_patience_failures_then_reset(drive: Any) -> None:
    space = floats(3)
    d = drive("restart_plateau", space)
    d.tell({"x0": 0.5, "x1": 0.5, "x2": 0.5}, 1.0)
    for _ in range(9):  # PATIENCE - 1 failures: keep going
        assert d.value("propose") is None
        d.tell({"x0": 0.5, "x1": 0.5, "x2": 0.51}, 2.0)
    assert d.value("propose") is None
    d.tell({"x0": 0.5, "x1": 0.5, "x2": 0.52}, 2.0)
    restart = d.value("propose")
    assert restart is not None
    Space.from_json(space).validate(restart)
    assert d.value("guide") is None  # the centre is the incumbent until a restart
    d.tell(restart, 3.0)
    assert d.value("propose") is None  # the count starts again
    assert d.value("guide") == {"centre": restart}  # the search centre moved to the (worse) restart point
    better = {"x0": 0.1, "x1": 0.2, "x2": 0.3}
    d.tell(better, 2.5)  # beats the centre, not the incumbent
    assert d.value("guide") == {"centre": better}


def test_restart_never_fires_while_improving(drive: Any) -> None:
    d = drive("restart_plateau", floats(2))
    for i in range(25):
        assert d.value("propose") is None
        d.tell({"x0": 0.5, "x1": 0.5}, 100.0 - i)


# --------------------------------------------------------------------------- elite_crossover
def test_elite_crossover_mixes_two_elites_every_fifth_trial(drive: Any) -> None:
    space = {"params": [{"name": "opt", "type": "categorical", "choices": ["adam", "sgd", "lion"]},
                        {"name": "act", "type": "categorical", "choices": ["relu", "gelu", "tanh"]},
                        {"name": "mix", "type": "simplex", "domains": ["web", "code", "books"]}]}
    d = drive("elite_crossover", space)
    history = [
        {"opt": "adam", "act": "relu", "mix": {"web": 0.8, "code": 0.1, "books": 0.1}},
        {"opt": "sgd", "act": "gelu", "mix": {"web": 0.1, "code": 0.8, "books": 0.1}},
        {"opt": "lion", "act": "tanh", "mix": {"web": 0.1, "code": 0.1, "books": 0.8}},
        {"opt": "adam", "act": "gelu", "mix": {"web": 0.4, "code": 0.4, "books": 0.2}},
        {"opt": "sgd", "act": "tanh", "mix": {"web": 0.2, "code": 0.4, "books": 0.4}},
        {"opt": "lion", "act": "relu", "mix": {"web": 0.3, "code": 0.3, "books": 0.4}},
    ]
    elites = history[:4]  # scored best first below
    for i, config in enumerate(history):
        d.tell(config, float(i))
    fired = 0
    for t in range(6, 30):
        d.t = t
        child = d.value("propose")
        if t % 5 != 4:
            assert child is None
            continue
        fired += 1
        assert child is not None
        Space.from_json(space).validate(child)
        parents = [e for e in elites if e["opt"] == child["opt"] or e["act"] == child["act"]]
        assert parents, child
        assert child["opt"] in {e["opt"] for e in elites} and child["act"] in {e["act"] for e in elites}
        near = min(spacekit.distance({"params": space["params"][2:]}, {"mix": child["mix"]}, {"mix": e["mix"]})
                   for e in elites)
        assert near < 0.1  # the simplex block comes whole from one parent (plus a small mutation)
    assert fired == 5


def test_elite_crossover_waits_for_enough_history(drive: Any) -> None:
    d = drive("elite_crossover", floats(2))
    for i in range(5):
        d.tell({"x0": i / 5, "x1": 1 - i / 5}, float(i))
    for t in range(5, 20):
        d.t = t
        assert d.value("propose") is None if t < 6 or t % 5 != 4 else True


# --------------------------------------------------------------------------- sham
def test_sham_fires_and_changes_nothing_useful(drive: Any) -> None:
    space = {"params": [{"name": "lr", "type": "float", "low": 1e-5, "high": 1.0, "log": True},
                        {"name": "n", "type": "int", "low": 1, "high": 9, "log": False},
                        {"name": "w", "type": "float", "low": -2.0, "high": 2.0, "log": False}]}
    d = drive("sham", space)
    for candidate in ({"lr": 0.01, "n": 3, "w": 0.5}, {"lr": 1.0, "n": 9, "w": 2.0}, {"lr": 1e-5, "n": 1, "w": -2.0}):
        out = d.value("review", candidate=candidate)
        assert out is not None and out != candidate  # recorded as firing and changing the proposal
        Space.from_json(space).validate(out)
        assert out["lr"] == candidate["lr"] and out["n"] == candidate["n"]
        assert math.isclose(out["w"], candidate["w"], abs_tol=1e-9)


def test_sham_without_floats_returns_the_candidate_unchanged(drive: Any) -> None:
    space = {"params": [{"name": "c", "type": "categorical", "choices": ["a", "b"]}]}
    d = drive("sham", space)
    assert d.value("review", candidate={"c": "b"}) == {"c": "b"}
