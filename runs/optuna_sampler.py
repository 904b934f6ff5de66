"""A kept mechanism stack as an optuna sampler, for ordinary optuna studies.

    sampler = StackSampler.load("stack.json", seed=0)   # written by `bilevel export RUN --sampler stack.json`
    study = optuna.create_study(sampler=sampler)

The stack's mechanisms run in a :class:`sandbox.SandboxSession` (one worker
per relative search space), exactly as in the inner loop: per trial,
``guide`` from every mechanism, a full proposal from the first mechanism that
offers one or else the stack's base proposer (its Level 1.5 search config,
which sees the guidance), then every ``review`` (with the inner loop's bound
on rejections), and ``observe`` of every finished trial. Parameters outside
the relative search space (the first trial, dynamic or unsupported
distributions) are sampled independently by a fallback optuna sampler.

optuna calls, per trial: ``infer_relative_search_space`` then
``sample_relative`` once, before the objective starts; ``sample_independent``
for each parameter the relative sample lacks; ``after_trial`` when it ends.
Minimisation and maximisation are both supported (the mechanisms always see
a score to minimise); multi-objective studies are refused.
"""

from __future__ import annotations

import json
import math
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from bilevel.inner.loop import InnerLoop, InnerSettings, derive_seed
from bilevel.inner.records import Trial, beats_incumbent
from bilevel.inner.space import CategoricalParam, FloatParam, IntParam, Param, Space, SpaceError
from bilevel.judge.stack import Stack
from bilevel.runs.history import stack_from_sources, stack_json_with_sources
from bilevel.sandbox import Limits

FORMAT = "bilevel-sampler"
VERSION = 1


def write_sampler_file(stack: Stack, path: Path, run_id: str = "", budget: int = 200) -> Path:
    """Write the file :meth:`StackSampler.load` reads (the stack with its mechanism sources)."""
    data = {"format": FORMAT, "version": VERSION, "run_id": run_id, "budget": budget,
            "describe": stack.describe(), "stack": stack_json_with_sources(stack)}
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    return Path(path)


def _supported(d: BaseDistribution) -> bool:
    if d.single():
        return False
    if isinstance(d, CategoricalDistribution):
        return all(isinstance(c, str | int | float | bool) for c in d.choices)
    return isinstance(d, FloatDistribution | IntDistribution)


class _Codec:
    """Maps an optuna relative search space to a bilevel :class:`Space` and values back."""

    def __init__(self, search_space: dict[str, BaseDistribution]) -> None:
        self.dists = dict(sorted(search_space.items()))
        params: list[Param] = []
        for name, d in self.dists.items():
            if isinstance(d, CategoricalDistribution):
                params.append(CategoricalParam(name, tuple(d.choices)))
            elif isinstance(d, IntDistribution):
                params.append(IntParam(name, int(d.low), int(d.high), bool(d.log)))
            elif isinstance(d, FloatDistribution):
                params.append(FloatParam(name, float(d.low), float(d.high), bool(d.log)))
        self.space = Space(tuple(params))
        self.signature = json.dumps(self.space.to_json(), sort_keys=True)

    def to_optuna(self, config: dict[str, Any]) -> dict[str, Any]:
        """A bilevel config as optuna parameter values (snapped to steps, plain Python types)."""
        out: dict[str, Any] = {}
        for name, d in self.dists.items():
            v = config[name]
            if isinstance(d, CategoricalDistribution):
                out[name] = next(c for c in d.choices if c == v and type(c) is type(v)) \
                    if any(c == v and type(c) is type(v) for c in d.choices) else d.choices[0]
            elif isinstance(d, IntDistribution):
                step = int(d.step)
                k = int(d.low) + step * int(round((float(v) - d.low) / step))
                out[name] = int(min(max(k, d.low), d.high - (d.high - d.low) % step))
            elif isinstance(d, FloatDistribution):
                x = float(v)
                if d.step is not None:
                    x = d.low + d.step * round((x - d.low) / d.step)
                out[name] = float(min(max(x, d.low), d.high))
        return out

    def from_trial(self, trial: FrozenTrial) -> dict[str, Any] | None:
        """A finished optuna trial's values as a bilevel config, or None if it lacks any parameter."""
        if any(n not in trial.params for n in self.dists):
            return None
        config = {n: trial.params[n] for n in self.dists}
        try:
            self.space.validate(config)
        except SpaceError:
            return None
        return config


class _Search:
    """The inner loop's steps (guidance, proposals, reviews in the sandbox) for one relative search space,
    driven by ask/tell: optuna evaluates the candidates."""

    def __init__(self, stack: Stack, codec: _Codec, seed: int, budget: int, limits: Limits,
                 max_rejections: int) -> None:
        self.codec = codec
        settings = InnerSettings(budget=budget, search=stack.search, max_rejections=max_rejections, limits=limits)
        self.loop = InnerLoop.driven(codec.space, stack.sources(), settings, seed)
        self.loop.open()
        self._finalizer = weakref.finalize(self, self.loop.close)
        self.seen: set[int] = set()
        self.sources: dict[str, int] = {}  # who proposed each point: a mechanism id or "base:<proposer>"

    def observe(self, trial: FrozenTrial, sign: float) -> None:
        """Tell the loop about one finished optuna trial (once per trial)."""
        self.seen.add(trial.number)
        config = self.codec.from_trial(trial)
        if config is None:
            return
        value = trial.value if trial.state == TrialState.COMPLETE and trial.value is not None else None
        score = None if value is None or not math.isfinite(value) else sign * float(value)
        kept = beats_incumbent(score, self.loop.incumbent)
        self.loop.tell(Trial(len(self.loop.trials), config, score, kept, "optuna"))

    def propose(self) -> dict[str, Any]:
        """One candidate: guidance, a mechanism's or the base proposer's proposal, then the reviews."""
        candidate, source = self.loop.ask()
        key = source.removeprefix("mechanism:")
        self.sources[key] = self.sources.get(key, 0) + 1
        return candidate

    def close(self) -> None:
        self._finalizer()


class StackSampler(BaseSampler):
    """An optuna sampler that searches with a bilevel mechanism stack (see the module doc)."""

    def __init__(self, stack: Stack, *, seed: int | None = None, budget: int = 200,
                 fallback: BaseSampler | None = None, max_rejections: int = 3, limits: Limits | None = None) -> None:
        self.stack = stack
        self.seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2**31))  # type: ignore[operator]
        self.budget = budget
        self.max_rejections = max_rejections
        self.limits = limits or Limits()
        self.fallback = fallback or RandomSampler(seed=self.seed)
        self._space = IntersectionSearchSpace()
        self._searches: dict[str, _Search] = {}
        self._lock = threading.RLock()

    @classmethod
    def load(cls, path: Path | str, **kwargs: Any) -> StackSampler:
        """A sampler from a file written by ``bilevel export RUN --sampler FILE``."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path} is not a bilevel sampler file (write one with `bilevel export RUN --sampler`)")
        kwargs.setdefault("budget", int(data.get("budget", 200)))
        return cls(stack_from_sources(data["stack"]), **kwargs)

    # -- optuna's sampler interface ------------------------------------------------
    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        """Called by optuna once per trial, before :meth:`sample_relative`."""
        _single_objective(study)
        space = self._space.calculate(study)
        return {n: d for n, d in space.items() if _supported(d)}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """Called once per trial with the inferred space; the mechanisms propose the whole point."""
        _single_objective(study)
        space = {n: d for n, d in search_space.items() if _supported(d)}
        if not space:
            return {}
        with self._lock:
            search = self._search(_Codec(space))
            sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
            done = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                             TrialState.FAIL), use_cache=True)
            for t in sorted(done, key=lambda t: t.number):
                if t.number not in search.seen:
                    search.observe(t, sign)
            return search.codec.to_optuna(search.propose())

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        """Called for each parameter outside the relative sample: the fallback sampler draws it."""
        _single_objective(study)
        return self.fallback.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.fallback.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Any) -> None:
        self.fallback.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.fallback.reseed_rng()

    # -- sessions ------------------------------------------------------------------------
    def _search(self, codec: _Codec) -> _Search:
        search = self._searches.get(codec.signature)
        if search is None:
            search = _Search(self.stack, codec, derive_seed(self.seed, codec.signature), self.budget, self.limits,
                             self.max_rejections)
            self._searches[codec.signature] = search
        return search

    def proposal_sources(self) -> dict[str, int]:
        """How many relative samples each mechanism (by id) or the base proposer proposed, over all spaces."""
        out: dict[str, int] = {}
        for s in self._searches.values():
            for k, v in s.sources.items():
                out[k] = out.get(k, 0) + v
        return out

    def close(self) -> None:
        """Stop the sandbox workers (also done when the sampler is garbage-collected)."""
        with self._lock:
            for s in self._searches.values():
                s.close()
            self._searches.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_searches"] = {}
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()


def _single_objective(study: optuna.Study) -> None:
    if study._is_multi_objective():
        raise ValueError("StackSampler supports single-objective studies only")
