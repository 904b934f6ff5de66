"""The optuna base proposers of the inner loop: TPE, CMA-ES, QMC and random, with pinned settings.

Called by the inner loop like every :class:`~bilevel.inner.proposers.Proposer` (see that module for
the call order, determinism and ``attempt`` rules). Each keeps an in-memory study whose state is what
replaying the history through ``tell`` gives, so a resumed run asks exactly what a fresh one asks.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from bilevel.inner.proposers import (
    _SALT_FROZEN_FILL,
    _SALT_INDEPENDENT,
    _SALT_RETRY,
    _SALT_SAMPLER,
    Proposer,
    ProposerError,
    _derived_seed,
    _keep,
    _ordered,
    _random_config,
    _rng,
)
from bilevel.inner.records import Trial
from bilevel.inner.search_config import SearchConfig, Strategy
from bilevel.inner.space import (
    CategoricalParam,
    Config,
    FloatParam,
    IntParam,
    Param,
    SimplexParam,
    Space,
    SpaceError,
    param_space,
)
from bilevel.mechanisms import spacekit

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
            for d, u in zip(p.domains, spacekit.encode(param_space(p), {p.name: value}), strict=True):
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
            values = self._retry_values(trial_index, attempt)
        return self._assemble(trial_index, incumbent, guidance, values)

    def what_if(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any],
                attempt: int) -> Config | None:
        """The proposal with other guidance, from this iteration's asked values (only ``freeze`` matters);
        None when the sampler was not asked at this index (asking would commit)."""
        if attempt == 0:
            if self._pending is None or self._pending.index != trial_index:
                return None
            values = self._pending.values
        else:
            values = self._retry_values(trial_index, attempt)
        return self._assemble(trial_index, incumbent, guidance, values)

    def _retry_values(self, trial_index: int, attempt: int) -> dict[str, Any]:
        """A retry's searched values: seeded random, never asked of the sampler (asking would commit)."""
        retry = _random_config(self.space, _rng(self.seed, trial_index, _SALT_RETRY, attempt))
        return {p.name: retry[p.name] for p in self._searched}

    def _assemble(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any],
                  values: dict[str, Any]) -> Config:
        """The frozen parameters filled in, the searched values laid over them, guidance's freeze applied."""
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
