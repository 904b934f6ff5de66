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
import importlib.util
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from inner.chat import ModelRef
from inner.records import Trial
from inner.search_config import SearchConfig, Strategy
from inner.space import CategoricalParam, Config, FloatParam, IntParam, Param, SimplexParam, Space, SpaceError
from mechanisms import spacekit

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


def make_proposer(space: Space, config: SearchConfig, seed: int, model: ModelRef | None = None,
                  context: str = "", llm_retries: int = 2) -> Proposer:
    """The base proposer for one inner run with ``seed``: the LLM proposer when ``model`` is given
    (its fallback follows ``config.strategy``), else the one ``config.strategy`` names.
    ``context`` names the inner run in the LLM's call records."""
    if model is not None:
        from inner.llm_proposer import LLMProposer

        return LLMProposer(space, config, seed, model, context=context, retries=llm_retries)
    if config.strategy is Strategy.GREEDY:
        return GreedyProposer(space, config, seed)
    if config.strategy is Strategy.RANDOM:
        return RandomProposer(space, config, seed)
    return OptunaProposer(space, config, seed)


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


def _one(p: Param) -> dict[str, Any]:
    """The JSON space holding only ``p``, for spacekit's codec."""
    return {"params": [p.to_json()]}


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
    js = _one(p)
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
    """The plain autoresearch baseline: perturb the incumbent a little.

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
    categorical takes another of its choices, uniformly. Stateless: a
    proposal depends only on ``(seed, trial_index, attempt)``, the incumbent
    and the guidance.
    """

    name = "greedy"

    def propose(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any]) -> Config:
        """Called when no mechanism proposed; see :meth:`Proposer.propose`."""
        rng = _rng(self.seed, trial_index, _SALT_PROPOSE, self._next_attempt(trial_index))
        frozen = self._frozen(guidance)
        if incumbent is None or trial_index < self.config.init_random:
            return _keep(_random_config(self.space, rng), incumbent, frozen)
        movable = [p for p in self.space.params if p.name not in frozen and _can_move(p)]
        out = copy.deepcopy(incumbent.config)
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

    def propose(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any]) -> Config:
        """Called when no mechanism proposed; see :meth:`Proposer.propose`."""
        rng = _rng(self.seed, trial_index, _SALT_PROPOSE, self._next_attempt(trial_index))
        return _keep(_random_config(self.space, rng), incumbent, self._frozen(guidance))


# ---------------------------------------------------------------------------
# Optuna samplers
# ---------------------------------------------------------------------------

TPE_SETTINGS: dict[str, Any] = {
    "n_startup_trials": 10,
    "n_ei_candidates": 24,
    "multivariate": False,  # optuna 5 defaults to multivariate; the classic independent TPE is the baseline
    "group": False,
    "constant_liar": False,  # optuna 5 defaults to True; one trial at a time, so there is nothing to lie about
    "consider_prior": True,
    "prior_weight": 1.0,
    "consider_magic_clip": True,
    "consider_endpoints": False,
}
"""TPE's settings, all pinned (optuna 5 changed defaults). The last four are deprecated arguments in
optuna 5 (passing them warns; the warning is silenced) and are passed so that a change of default cannot
change the baseline silently. ``gamma`` and ``weights`` keep optuna's default functions."""

CMAES_SETTINGS: dict[str, Any] = {
    "x0": None,  # the centre of the space
    "sigma0": None,  # 1/6 of the (0-1 normalised) range
    # CMA-ES infers its search space from completed trials, so the first trial is sampled independently
    # whatever this says; 1 states what happens.
    "n_startup_trials": 1,
    "restart_strategy": None,
    "popsize": None,  # 4 + floor(3 ln n)
    "inc_popsize": -1,
    "use_separable_cma": False,
    # Integers are searched as continuous values and rounded. CMA-ES with margin helps only for integers
    # with very few values, and its discretisation state would be one more thing to replay.
    "with_margin": False,
    "lr_adapt": False,
    "consider_pruned_trials": False,
    "warn_independent_sampling": False,  # categoricals always go to the independent sampler (documented)
}
"""CMA-ES's settings, all pinned. CMA-ES cannot handle categorical parameters: optuna samples them with the
independent sampler (a seeded RandomSampler) while CMA-ES searches the numeric ones and the simplex
coordinates. A space with only one numeric coordinate falls back to the independent sampler entirely."""

QMC_SETTINGS: dict[str, Any] = {
    "qmc_type": "sobol",
    "scramble": True,
    "warn_asynchronous_seeding": False,
    "warn_independent_sampling": False,
}
"""QMC's settings. optuna draws the first trial (before any completed trial fixes the search space) from
the independent sampler, then the scrambled, seeded Sobol sequence in order."""


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated-but-pinned arguments
        return optuna.samplers.TPESampler(seed=seed, **TPE_SETTINGS)


def _require(module: str, strategy: Strategy) -> None:
    """Fail at construction, not at the first ask, when a sampler's optional dependency is missing."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"strategy {strategy.value!r} needs the {module!r} package (optuna uses it); "
                          f"install it with: pip install {module}")


def _cmaes(seed: int) -> optuna.samplers.BaseSampler:
    _require("cmaes", Strategy.CMAES)
    independent = optuna.samplers.RandomSampler(seed=_derived_seed(seed, _SALT_INDEPENDENT))
    return optuna.samplers.CmaEsSampler(seed=seed, independent_sampler=independent, **CMAES_SETTINGS)


def _qmc(seed: int) -> optuna.samplers.BaseSampler:
    _require("scipy", Strategy.QMC)
    independent = optuna.samplers.RandomSampler(seed=_derived_seed(seed, _SALT_INDEPENDENT))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(seed=seed, independent_sampler=independent, **QMC_SETTINGS)


def make_sampler(strategy: Strategy, seed: int) -> optuna.samplers.BaseSampler:
    """The seeded optuna sampler for ``strategy``, with its settings pinned (see the ``*_SETTINGS``)."""
    s = _derived_seed(seed, _SALT_SAMPLER)
    if strategy is Strategy.TPE:
        return _tpe(s)
    if strategy is Strategy.CMAES:
        return _cmaes(s)
    if strategy is Strategy.QMC:
        return _qmc(s)
    if strategy is Strategy.OPTUNA_RANDOM:
        return optuna.samplers.RandomSampler(seed=s)
    raise ValueError(f"strategy {strategy.value!r} is not an optuna sampler")


_SAMPLER_SETTINGS: dict[Strategy, dict[str, Any]] = {
    Strategy.TPE: TPE_SETTINGS,
    Strategy.CMAES: CMAES_SETTINGS,
    Strategy.QMC: QMC_SETTINGS,
    Strategy.OPTUNA_RANDOM: {},
}


def coord_name(block: str, domain: str) -> str:
    """The optuna parameter name of one domain of a simplex block."""
    return f"{block}.{domain}"


def distributions(params: Iterable[Param]) -> dict[str, BaseDistribution]:
    """One optuna distribution per parameter; a simplex block of k domains gives k floats in [0, 1]."""
    out: dict[str, BaseDistribution] = {}
    for p in params:
        if isinstance(p, FloatParam):
            out[p.name] = FloatDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, IntParam):
            out[p.name] = IntDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, CategoricalParam):
            out[p.name] = CategoricalDistribution(p.choices)
        else:
            for d in p.domains:
                name = coord_name(p.name, d)
                if name in out:
                    raise ValueError(f"optuna parameter name {name!r} is used twice; rename {p.name!r}")
                out[name] = FloatDistribution(0.0, 1.0)
    return out


def params_to_config(params: Iterable[Param], values: dict[str, Any]) -> Config:
    """The config values of optuna parameter values (simplex coordinates normalised)."""
    out: Config = {}
    for p in params:
        if isinstance(p, SimplexParam):
            out[p.name] = spacekit.normalise(list(p.domains), [values[coord_name(p.name, d)] for d in p.domains])
        elif isinstance(p, IntParam):
            out[p.name] = int(values[p.name])
        elif isinstance(p, FloatParam):
            out[p.name] = float(values[p.name])
        else:
            out[p.name] = values[p.name]
    return out


def config_to_params(params: Iterable[Param], config: Config) -> dict[str, Any]:
    """Optuna parameter values of a config; a simplex block becomes its unit encoding ``w / max w``."""
    out: dict[str, Any] = {}
    for p in params:
        value = config[p.name]
        if isinstance(p, SimplexParam):
            for d, u in zip(p.domains, spacekit.encode(_one(p), {p.name: value}), strict=True):
                out[coord_name(p.name, d)] = u
        elif isinstance(p, IntParam):
            out[p.name] = int(value)
        elif isinstance(p, FloatParam):
            out[p.name] = float(value)
        else:
            out[p.name] = value
    return out


def _same_value(p: Param, a: Any, b: Any) -> bool:
    if isinstance(p, SimplexParam):
        return all(math.isclose(a[d], b[d], rel_tol=1e-9, abs_tol=1e-12) for d in p.domains)
    if isinstance(p, FloatParam):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def same_values(params: Iterable[Param], a: Config, b: Config) -> bool:
    """True when ``a`` and ``b`` agree on ``params`` (floats and weights up to rounding)."""
    return all(_same_value(p, a[p.name], b[p.name]) for p in params)


def _usable_score(trial: Trial) -> float | None:
    """The score to tell optuna, or None for a failed or non-finite evaluation (told as FAIL)."""
    s = trial.score
    if s is None or isinstance(s, bool) or not math.isfinite(s):
        return None
    return float(s)


@dataclass(frozen=True)
class _Asked:
    """One ``ask`` of the study: the trial index it was for, the optuna trial and its config values."""

    index: int
    trial: optuna.trial.Trial | None
    values: Config


class OptunaProposer(Proposer):
    """An optuna sampler (TPE, CMA-ES, QMC or random) driven through an in-memory study by ask and tell.

    Every parameter not frozen by the config is an optuna parameter (see
    :func:`distributions`). Frozen parameters are not asked at all, so the
    sampler's search space stays fixed for the inner run; the proposal takes
    their values from the incumbent (before there is one, from a generator
    seeded by ``(seed, trial_index)``). ``guidance["freeze"]`` changes from
    iteration to iteration, so it is applied after the ask: those parameters
    are overwritten with the incumbent's values. ``focus`` and ``step_scale``
    have no meaning to these samplers and are ignored.

    ``tell``: the asked trial is told COMPLETE with the score when the
    evaluated config has the asked values (up to rounding). When a review or
    ``guidance["freeze"]`` changed them, the asked trial is told FAIL (the
    samplers ignore failed trials) and the evaluated config is added as a
    trial of its own; trials the proposer did not ask for (mechanism
    proposals) are added the same way, a simplex block as its unit encoding
    ``w / max w``. A failed evaluation (score None, or not finite) is told or
    added as FAIL; a trial whose config is not valid in the space is skipped. CMA-ES learns only from trials it asked for itself, so
    mechanism proposals and changed candidates do not move its search
    distribution; TPE learns from all of them.
    """

    def __init__(self, space: Space, config: SearchConfig, seed: int) -> None:
        """Called once per inner run: builds the seeded sampler and an empty in-memory study."""
        super().__init__(space, config, seed)
        if config.strategy not in _SAMPLER_SETTINGS:
            raise ValueError(f"strategy {config.strategy.value!r} is not an optuna sampler; use make_proposer")
        self.name = config.strategy.value
        self._searched = tuple(p for p in space.params if p.name not in config.frozen)
        self._dists = distributions(self._searched)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._study = self._new_study()
        self._history: list[Trial] = []
        self._pending: _Asked | None = None

    def settings(self) -> dict[str, Any]:
        """The base settings plus the sampler's pinned settings and the optuna version."""
        return {**super().settings(), "optuna": optuna.__version__,
                "sampler": dict(_SAMPLER_SETTINGS[self.config.strategy])}

    @property
    def study(self) -> optuna.Study:
        """The in-memory study (for inspection and tests; the proposer owns it)."""
        return self._study

    def propose(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any]) -> Config:
        """Called when no mechanism proposed (again after a rejection); see :meth:`Proposer.propose`."""
        attempt = self._next_attempt(trial_index)
        if attempt == 0:
            if self._pending is not None:
                raise ProposerError(f"propose({trial_index}) called before trial {self._pending.index} was told; "
                                    "call tell with each finished trial before the next propose")
            self._pending = self._ask(trial_index)
            values = self._pending.values
        else:
            retry = _random_config(self.space, _rng(self.seed, trial_index, _SALT_RETRY, attempt))
            values = {p.name: retry[p.name] for p in self._searched}
        out = self._fill_frozen(trial_index, incumbent)
        out.update(copy.deepcopy(values))
        return _ordered(self.space, _keep(out, incumbent, self._frozen(guidance)))

    def tell(self, trial: Trial) -> None:
        """Called once per finished trial, in order; on resume, for every recorded trial before ``propose``."""
        asked, self._pending = self._pending, None
        if asked is not None and asked.index != trial.index:
            raise ProposerError(f"tell got trial {trial.index} after propose({asked.index}); "
                                "tell each finished trial before the next propose")
        self._history.append(trial)
        if asked is not None and trial.source != self.source:
            # The ask was made but the replay rule would not make it (a mechanism's candidate won after a
            # rejection): rebuild the study from the history, as a resumed run would.
            self._rebuild()
            return
        self._absorb(trial, asked)

    # -- internals -----------------------------------------------------------
    def _new_study(self) -> optuna.Study:
        return optuna.create_study(direction="minimize", sampler=make_sampler(self.config.strategy, self.seed))

    def _rebuild(self) -> None:
        self._study = self._new_study()
        for trial in self._history:
            self._absorb(trial, None)

    def _absorb(self, trial: Trial, asked: _Asked | None) -> None:
        """Tell ``trial`` by the replay rule: a trial with this proposer's source answers an ask."""
        if asked is None and trial.source == self.source:
            asked = self._ask(trial.index)  # resume: repeat the ask this trial came from
        if asked is None:
            self._add(trial)
        else:
            self._finish(asked, trial)

    def _ask(self, trial_index: int) -> _Asked:
        if not self._dists:
            return _Asked(trial_index, None, {})
        t = self._study.ask(self._dists)
        return _Asked(trial_index, t, params_to_config(self._searched, t.params))

    def _fill_frozen(self, trial_index: int, incumbent: Trial | None) -> Config:
        """Values for the config's frozen parameters: the incumbent's, else seeded random ones."""
        frozen = self.config.frozen
        if incumbent is not None:
            return _keep({}, incumbent, frozen)
        sample = _random_config(self.space, _rng(self.seed, trial_index, _SALT_FROZEN_FILL))
        return {n: sample[n] for n in frozen}

    def _valid(self, config: Any) -> bool:
        try:
            self.space.validate(config)
        except SpaceError:
            return False
        return True

    def _finish(self, asked: _Asked, trial: Trial) -> None:
        if asked.trial is None:
            return
        score = _usable_score(trial)
        if not self._valid(trial.config):  # never evaluated: nothing to learn
            self._study.tell(asked.trial, state=TrialState.FAIL)
        elif not same_values(self._searched, asked.values, trial.config):
            self._study.tell(asked.trial, state=TrialState.FAIL)
            self._add(trial)
        elif score is None:
            self._study.tell(asked.trial, state=TrialState.FAIL)
        else:
            self._study.tell(asked.trial, score)

    def _add(self, trial: Trial) -> None:
        if not self._dists or not self._valid(trial.config):  # an invalid config was never evaluated
            return
        score = _usable_score(trial)
        frozen = optuna.trial.create_trial(
            state=TrialState.COMPLETE if score is not None else TrialState.FAIL,
            value=score,
            params=config_to_params(self._searched, trial.config),
            distributions=self._dists,
        )
        self._study.add_trial(frozen)
