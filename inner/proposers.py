"""The base proposers of the inner loop: greedy perturbation, random, and optuna samplers.

The inner loop asks its base proposer for a candidate only in iterations where
no mechanism proposed one (see ``mechanisms.contract``). Which proposer, and
how it searches, is the Level 1.5 :class:`~inner.search_config.SearchConfig`.

Determinism. A proposal is a function of the space, the search config, the
inner run's seed and the trials told so far (and, for greedy and random, the
incumbent and guidance the loop passes in, which are themselves functions of
the history). No proposer reads a clock or an unseeded random source.

- ``greedy`` and ``random`` keep no state: each proposal draws from a
  generator seeded by ``(seed, trial_index, attempt)``.
- The optuna proposers keep an in-memory study whose state is, by
  definition, what replaying the history through ``tell`` gives: for a
  trial whose ``source`` is :attr:`Proposer.source` the proposer repeats the
  ``ask`` for that trial index (so the sampler's random state, CMA-ES's
  generation state and the QMC sequence position are rebuilt exactly), then
  tells it; any other trial is added as it is. A resumed run does exactly
  this. The inner loop records ``trial.source = proposer.source`` (that is
  ``"base:" + name``) for candidates that came from ``propose``, also when a
  review changed them afterwards.

``attempt``: when a review rejects a candidate, the inner loop may call
``propose`` again for the same trial index. Each call then returns another
candidate (attempt 1, 2, ...). Greedy and random draw it from the
attempt's own generator. An optuna proposer asks its sampler only at attempt
0 and answers later attempts with seeded random points, so that the study
sees one ask per iteration and a resumed run can replay it; if the trial of
that iteration then comes from a mechanism, the study is rebuilt from the
history (rare, and exact).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np

from bilevel.inner.records import Trial
from bilevel.inner.search_config import SearchConfig
from bilevel.inner.space import (
    CategoricalParam,
    Config,
    FloatParam,
    IntParam,
    Param,
    Space,
    param_space,
)
from bilevel.mechanisms import spacekit

SOURCE_PREFIX = "base:"
"""``Proposer.source`` is this prefix followed by the proposer's name, e.g. ``base:tpe``."""

# Salts that keep the random streams of different uses of one seed apart.
_SALT_PROPOSE = 1
_SALT_FROZEN_FILL = 2
_SALT_SAMPLER = 3
_SALT_INDEPENDENT = 4
_SALT_RETRY = 5


class ProposerError(RuntimeError):
    """The inner loop broke the proposer's call order; the message says which rule and how to fix it."""


# ---------------------------------------------------------------------------
# The base class
# ---------------------------------------------------------------------------


class Proposer(ABC):
    """A base proposer of the inner loop.

    Call order per inner run: constructed once with the space, the search
    config and the inner run's seed; then for each iteration: ``propose``
    *only if no mechanism proposed* (again, with the same index, when a review
    rejected its candidate: see "attempt" in the module doc), then ``tell``
    exactly once with the finished trial (whoever proposed it, and with the
    config that was actually evaluated, which review hooks may have changed).
    A resumed inner run makes a fresh proposer and calls ``tell`` for every
    recorded trial before the first new ``propose``; proposals must then be
    identical to those of an uninterrupted run.

    The inner loop records ``trial.source = proposer.source`` for candidates
    that came from ``propose`` (see the module doc).
    """

    name: str = "base"
    speculative: bool = False
    """Whether ``what_if(t + 1, ...)``, asked before ``tell`` of trial ``t``, is what ``propose`` returns
    at trial ``t + 1`` (attempt 0) with the same incumbent config and guidance. True only for a proposer
    whose proposals depend on nothing ``tell`` changes; the inner loop then predicts the next trial's
    reviews (``inner.speculation``)."""

    def __init__(self, space: Space, config: SearchConfig, seed: int) -> None:
        """Called once per inner run, before any ``propose`` or ``tell``."""
        unknown = sorted(set(config.frozen) - set(space.names))
        if unknown:
            raise ValueError(f"search config freezes unknown parameters {unknown}; the space has {space.names}")
        self.space = space
        self.config = config
        self.seed = int(seed)
        self._last_call = (-1, -1)  # (trial index, attempt) of the latest propose

    def _next_attempt(self, trial_index: int) -> int:
        """Called at the start of ``propose``: 0 for a new trial index, then 1, 2, ... for repeated calls."""
        index, attempt = self._last_call
        attempt = attempt + 1 if index == trial_index else 0
        self._last_call = (trial_index, attempt)
        return attempt

    @property
    def source(self) -> str:
        """The ``trial.source`` the inner loop records for candidates this proposer made."""
        return SOURCE_PREFIX + self.name

    @abstractmethod
    def propose(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any]) -> Config:
        """Called in iteration ``trial_index`` when no mechanism proposed; returns a valid config.

        ``incumbent`` is the best kept trial so far (None before the first);
        ``guidance`` is the merged, checked guidance of the mechanisms
        (``focus``, ``freeze``, ``step_scale``; see ``mechanisms.contract``).
        """

    def what_if(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any],
                attempt: int) -> Config | None:
        """The config ``propose`` would return at ``(trial_index, attempt)`` with ``guidance``, committing
        nothing (no attempt counted, no sampler asked, no model called); None where that cannot be known.

        Called by the inner loop's counterfactual activation check (``inner.counterfactual``), after the
        real proposal of the iteration and before ``tell``.
        """
        return None

    def tell(self, trial: Trial) -> None:  # noqa: B027 - a no-op default is the point
        """Called once per finished trial, in order, whoever proposed it (also on resume, for the history)."""

    @property
    def last_source(self) -> str:
        """The ``trial.source`` of the latest proposal (read by the inner loop right after ``propose``)."""
        return self.source

    def call_records(self) -> list[dict[str, Any]]:
        """Model calls made so far, as JSON (read by the inner loop when the run ends); none for most."""
        return []

    def settings(self) -> dict[str, Any]:
        """Everything that determines this proposer's behaviour, as JSON, for the run record."""
        return {"name": self.name, "seed": self.seed, "config": self.config.to_json()}

    def _frozen(self, guidance: dict[str, Any]) -> set[str]:
        """Names this proposal must not change: the config's frozen ones and the guidance's ``freeze``."""
        names = set(self.config.frozen) | set(guidance.get("freeze", ()))
        return names & set(self.space.names)



# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def _u64(seed: int) -> int:
    return int(seed) % (1 << 64)


def _rng(seed: int, trial_index: int, salt: int, attempt: int = 0) -> np.random.Generator:
    """A generator that depends only on ``(seed, trial_index, salt, attempt)``."""
    entropy = [_u64(seed), int(trial_index) % (1 << 64), salt, attempt]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _derived_seed(seed: int, salt: int) -> int:
    """A 32-bit seed (what optuna's samplers accept) derived from the inner run's seed."""
    return int(np.random.SeedSequence([_u64(seed), salt]).generate_state(1)[0])



_ATOMS = frozenset({str, int, float, bool, type(None)})


def _deepcopy(value: Any) -> Any:
    """``copy.deepcopy(value)``; a flat config (a dict of str keys and immutable values, the usual one) is
    copied with ``dict``, which gives the same result without deepcopy's per-value dispatch."""
    if type(value) is dict and all(type(k) is str and type(v) in _ATOMS for k, v in value.items()):
        return dict(value)
    return copy.deepcopy(value)


def _keep(out: Config, incumbent: Trial | None, names: Iterable[str]) -> Config:
    """``out`` with the incumbent's exact values for ``names`` (unchanged when there is no incumbent)."""
    if incumbent is not None:
        for n in names:
            out[n] = copy.deepcopy(incumbent.config[n])
    return out


def _ordered(space: Space, config: Config) -> Config:
    return {n: config[n] for n in space.names}


def _random_config(space: Space, rng: np.random.Generator) -> Config:
    """Uniform in the unit cube, decoded (log-uniform on log scales)."""
    return space.sample(rng)


# ---------------------------------------------------------------------------
# Greedy perturbation
# ---------------------------------------------------------------------------


def _can_move(p: Param) -> bool:
    """False for parameters with a single possible value."""
    if isinstance(p, CategoricalParam):
        return len(p.choices) > 1
    if isinstance(p, FloatParam | IntParam):
        return p.high > p.low
    return True


def _reflect(x: float) -> float:
    """Fold any real into [0, 1] by reflection at the faces (so a value on a bound can still move)."""
    y = abs(x) % 2.0
    return 2.0 - y if y > 1.0 else y


def _perturb(p: Param, value: Any, sigma: float, rng: np.random.Generator) -> Any:
    """A new value for one parameter: Gaussian in its unit coordinates, another choice for a categorical."""
    if isinstance(p, CategoricalParam):
        others = [c for c in p.choices if c != value]
        return others[int(rng.integers(len(others)))] if others else value
    js = param_space(p)
    u = spacekit.encode(js, {p.name: value})
    noise = rng.normal(0.0, sigma, len(u))
    moved = [_reflect(a + b) for a, b in zip(u, noise.tolist(), strict=True)]
    new = spacekit.decode(js, moved)[p.name]
    if isinstance(p, IntParam) and new == value:
        # Too small a step to reach the next integer: take one step in the noise's direction.
        step, v = (1 if noise[0] >= 0 else -1), int(value)
        new = v + step if p.low <= v + step <= p.high else v - step
    return new


def _choose(movable: list[Param], focus: Iterable[str], n_changes: int, rng: np.random.Generator) -> list[Param]:
    """Between one and ``n_changes`` parameters to change, focus parameters first."""
    k = int(rng.integers(1, min(n_changes, len(movable)) + 1))
    wanted = set(focus)
    first = [p for p in movable if p.name in wanted]
    rest = [p for p in movable if p.name not in wanted]
    order = [first[i] for i in rng.permutation(len(first))] + [rest[i] for i in rng.permutation(len(rest))]
    return order[:k]


class GreedyProposer(Proposer):
    """The plain autoresearch baseline: perturb the incumbent a little (or ``guidance["centre"]``).

    The first ``init_random`` proposals (and any before there is an
    incumbent) are uniform random. Afterwards each proposal copies the
    incumbent and changes between one and ``n_changes`` parameters, chosen
    among those not frozen (by the config or ``guidance["freeze"]``), the
    ``guidance["focus"]`` ones first. A number moves by Gaussian noise of
    standard deviation ``step_size * guidance["step_scale"]`` in its unit
    coordinate (log scale for log parameters), reflected at the bounds of the
    cube so that a value on a bound still moves; an integer that would not
    change moves by one. A simplex block moves as a block: every domain's unit
    coordinate (``w / max w``) gets noise, and the block is renormalised. A
    categorical takes another of its choices, uniformly. When a mechanism
    gives ``guidance["centre"]`` (a restart), that config is perturbed instead
    of the incumbent's. Stateless: a
    proposal depends only on ``(seed, trial_index, attempt)``, the incumbent
    and the guidance.
    """

    name = "greedy"
    speculative = True

    def propose(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any]) -> Config:
        """Called when no mechanism proposed; see :meth:`Proposer.propose`."""
        return self.what_if(trial_index, incumbent, guidance, self._next_attempt(trial_index))

    def what_if(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any],
                attempt: int) -> Config:
        """Stateless: the proposal at ``attempt`` (see :meth:`Proposer.what_if`)."""
        rng = _rng(self.seed, trial_index, _SALT_PROPOSE, attempt)
        frozen = self._frozen(guidance)
        if incumbent is None or trial_index < self.config.init_random:
            return _keep(_random_config(self.space, rng), incumbent, frozen)
        movable = [p for p in self.space.params if p.name not in frozen and _can_move(p)]
        out = _deepcopy(guidance.get("centre", incumbent.config))
        if not movable:
            return _ordered(self.space, out)
        sigma = self.config.step_size * float(guidance.get("step_scale", 1.0))
        for p in _choose(movable, guidance.get("focus", ()), self.config.n_changes, rng):
            out[p.name] = _perturb(p, out[p.name], sigma, rng)
        return _ordered(self.space, out)


# ---------------------------------------------------------------------------
# Random
# ---------------------------------------------------------------------------


class RandomProposer(Proposer):
    """Uniform in the unit cube (log-uniform on log scales); frozen parameters keep the incumbent's value.

    Stateless: a proposal depends only on ``(seed, trial_index, attempt)``, the incumbent and
    ``guidance["freeze"]``.
    """

    name = "random"
    speculative = True

    def propose(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any]) -> Config:
        """Called when no mechanism proposed; see :meth:`Proposer.propose`."""
        return self.what_if(trial_index, incumbent, guidance, self._next_attempt(trial_index))

    def what_if(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any],
                attempt: int) -> Config:
        """Stateless: the proposal at ``attempt`` (see :meth:`Proposer.what_if`)."""
        rng = _rng(self.seed, trial_index, _SALT_PROPOSE, attempt)
        return _keep(_random_config(self.space, rng), incumbent, self._frozen(guidance))
