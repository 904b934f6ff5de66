"""The inner loop (Level 1): propose, review, evaluate, keep or revert, observe.

One call of :func:`run_inner` is one inner run: a benchmark instance, a seed,
a stack of sandboxed mechanisms and a base proposer. The keep/revert rule is
fixed (``inner.records.beats_incumbent``, the one copy) and cannot be changed
by mechanisms: a trial becomes the incumbent only if its score is strictly
lower than the incumbent's.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bilevel.inner.chat import ModelRef
from bilevel.inner.counterfactual import (
    SKIP,
    Answer,
    Oracle,
    Pending,
    canonical,
    changed_by,
    pending_calls,
)
from bilevel.inner.iteration import Iteration
from bilevel.inner.objective import Objective, ObjectiveError
from bilevel.inner.proposer_factory import make_proposer
from bilevel.inner.proposers import Proposer
from bilevel.inner.records import HookEvent, InnerResult, Trial, beats_incumbent
from bilevel.inner.search_config import SearchConfig
from bilevel.inner.space import Config, Space, SpaceError
from bilevel.inner.speculation import Speculation
from bilevel.mechanisms.contract import ContractError, check_guidance, merge_guidance
from bilevel.sandbox import Limits, Outcome, SandboxError, SandboxSession, Status

MechanismSource = tuple[str, str]  # (mechanism id, source)


def derive_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed derived from ``seed`` and labels, stable across processes and platforms."""
    text = ":".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


class SessionPool:
    """Started sandbox sessions kept between consecutive inner runs of one process (a start costs ~0.15 s).

    ``acquire`` is called when an inner run starts and ``release`` when it
    ends; a reused session forks a clean worker from its fork server for each
    inner run (``reload``), so a run's behaviour does not depend on what ran before.
    """

    def __init__(self) -> None:
        self._idle: dict[Limits, SandboxSession] = {}

    def acquire(self, mechanisms: Sequence[MechanismSource], space: dict[str, Any], seed: int, budget: int,
                limits: Limits) -> tuple[SandboxSession, dict[str, Outcome]]:
        session = self._idle.pop(limits, None)
        if session is not None:
            try:
                return session, session.reload(mechanisms, seed, budget, space)
            except SandboxError:
                session.close()
        session = SandboxSession(mechanisms, space, seed, budget, limits)
        return session, session.start()

    def release(self, session: SandboxSession) -> None:
        if session.limits in self._idle:
            session.close()
        else:
            self._idle[session.limits] = session

    def close(self) -> None:
        for session in self._idle.values():
            session.close()
        self._idle.clear()


DEFAULT_POOL = SessionPool()
atexit.register(DEFAULT_POOL.close)


@dataclass(frozen=True)
class InnerSettings:
    """How one inner run is carried out (everything but the objective and the mechanisms)."""

    budget: int = 60
    search: SearchConfig = field(default_factory=SearchConfig)
    max_rejections: int = 3
    limits: Limits = field(default_factory=Limits)
    model: ModelRef | None = None  # the LLM proposer's model; None: the strategy's proposer
    llm_retries: int = 2  # re-asks of the model after a rejected answer, before the fallback proposes
    counterfactual: bool = True  # record per trial which mechanisms changed the evaluated config
    # send the next trial's predicted reviews with an observe (never changes results); off: on this machine the
    # prediction costs more host time than the exchange it saves (bench/mechanism_overhead.py prints both)
    speculate: bool = False


ROUNDS = 4
"""Rounds of dry calls sent together before the rest are made one at a time."""


class InnerLoop:
    """Runs one inner run. Construct, then call :meth:`run` once.

    When the stack is not empty, a sandbox worker is taken from ``pool``
    (started if none is idle) and given back when the run ends; ``pool=None``
    starts a private worker and closes it at the end.
    """

    def __init__(
        self,
        objective: Objective,
        mechanisms: Sequence[MechanismSource],
        settings: InnerSettings,
        seed: int,
        pool: SessionPool | None = DEFAULT_POOL,
    ) -> None:
        self.objective = objective
        self.pool = pool
        self.space: Space = objective.space
        self.mechanisms = list(mechanisms)
        self.settings = settings
        self.seed = seed
        context = hashlib.sha256(json.dumps([[m for m, _ in self.mechanisms], settings.search.to_json(), seed],
                                            sort_keys=True).encode()).hexdigest()[:16]
        self.proposer: Proposer = make_proposer(self.space, settings.search, derive_seed(seed, "base"),
                                                model=settings.model, context=f"run:{context}",
                                                llm_retries=settings.llm_retries)
        self.session: SandboxSession | None = None
        self.load_outcomes: dict[str, Outcome] = {}
        self.incumbent: Trial | None = None
        self.trials: list[Trial] = []
        self.round_trips = 0  # exchanges with the sandbox worker after it loaded the stack (sandbox.steps)
        self._round_trips_at_start = 0
        self._speculation = Speculation()  # the next trial's reviews, predicted (inner.speculation)

    # -- public --------------------------------------------------------------
    def run(
        self,
        resume_from: Sequence[Trial] = (),
        on_trial: Callable[[Trial], None] | None = None,
    ) -> InnerResult:
        """Run the remaining trials of the budget; ``resume_from`` are trials already recorded."""
        self._start_sandbox()
        try:
            for trial in resume_from:
                self._absorb(trial, replay=True)
            for t in range(len(self.trials), self.settings.budget):
                trial = self._iterate(t)
                if on_trial is not None:
                    on_trial(trial)
        finally:
            layers = self.session.layers if self.session else ()
            faults = self._mechanism_faults()
            self._stop_sandbox()
        return InnerResult(tuple(self.trials), tuple(m for m, _ in self.mechanisms), tuple(layers),
                           tuple(self.proposer.call_records()), faults)

    def _mechanism_faults(self) -> tuple[dict[str, str], ...]:
        """Load failures and the outcome that disabled each mechanism, so a verdict shows who failed."""
        out = [{"mechanism": mid, "hook": "load", "status": o.status.value, "message": o.message[:1000],
                "layer": o.layer} for mid, o in self.load_outcomes.items() if not o.ok]
        if self.session is not None:
            failed = {f["mechanism"] for f in out}
            for mid, _ in self.mechanisms:
                why = self.session.disabled_reason(mid)
                if why is not None and mid not in failed:
                    out.append({"mechanism": mid, "hook": "disabled", "status": why.status.value,
                                "message": why.message[:1000], "layer": why.layer})
        return tuple(out)

    # -- sandbox ---------------------------------------------------------------
    def _start_sandbox(self) -> None:
        if not self.mechanisms:
            return
        args = (self.mechanisms, self.space.to_json(), derive_seed(self.seed, "sandbox"), self.settings.budget,
                self.settings.limits)
        if self.pool is not None:
            self.session, self.load_outcomes = self.pool.acquire(*args)
        else:
            self.session = SandboxSession(*args)
            self.load_outcomes = self.session.start()
        self._round_trips_at_start = self.session.round_trips

    def _stop_sandbox(self) -> None:
        if self.session is None:
            return
        self.round_trips += self.session.round_trips - self._round_trips_at_start
        if self.pool is not None:
            self.pool.release(self.session)
        else:
            self.session.close()
        self.session = None

    def _active_with(self, hook: str) -> list[str]:
        if self.session is None:
            return []
        return [m for m in self.session.active if hook in self.session.hooks(m)]

    # -- ask/tell, for candidates evaluated elsewhere ---------------------------
    @classmethod
    def driven(cls, space: Space, mechanisms: Sequence[MechanismSource], settings: InnerSettings, seed: int,
               pool: SessionPool | None = None) -> InnerLoop:
        """A loop whose candidates something else evaluates (an optuna study): ``open``, then ``ask`` and
        ``tell`` alternately, then ``close``. The steps are the same as :meth:`run`'s."""
        return cls(_EvaluatedElsewhere(space), mechanisms, settings, seed, pool)

    def open(self) -> None:
        """Start (or take from the pool) the sandbox worker; called once before the first ``ask``."""
        self._start_sandbox()

    def close(self) -> None:
        """Give the worker back; idempotent."""
        self._stop_sandbox()

    def ask(self) -> tuple[Config, str]:
        """The next candidate and who proposed it (guidance, proposal, reviews at index ``len(trials)``)."""
        return self._select(Iteration(index=len(self.trials), checked=False, incumbent=self.incumbent))

    def tell(self, trial: Trial) -> None:
        """A finished trial (whoever proposed it): proposer, incumbent and mechanisms learn from it."""
        self._absorb(trial, replay=True)

    # -- one iteration -----------------------------------------------------
    def _select(self, it: Iteration) -> tuple[Config, str]:
        """Steps 1-3 of an iteration: gather guidance, propose, review with a bound on rejections."""
        if self.session is not None:
            it.path.order = list(self.session.active)
            it.path.hooks = {m: tuple(self.session.hooks(m)) for m in it.path.order}
        it.guidance = self._gather_guidance(it)
        candidate, source = self._propose(it)
        while True:
            reviewed, reason = self._review(it, candidate)
            if reason is None:
                return reviewed, source
            it.rejections += 1
            if it.rejections >= self.settings.max_rejections:
                it.notes.append(f"rejection bound {self.settings.max_rejections} hit; ran the last candidate")
                return candidate, source
            candidate, source = self._propose(it)

    def _iterate(self, t: int) -> Trial:
        it = Iteration(index=t, incumbent=self.incumbent)
        candidate, source = self._select(it)
        if self.settings.speculate:  # the prediction's history; nothing to keep when it is off
            self._speculation.seen(it.path.parts)
        changed = self._changed_by(it, candidate)
        score, error = self._evaluate(candidate)
        kept = beats_incumbent(score, self.incumbent)
        draft = Trial(t, candidate, score, kept, source, it.rejections, (), "; ".join([*it.notes, error]).strip("; "))
        it.events.extend(self._observe(draft, ahead=t + 1 if t + 1 < self.settings.budget else None))
        trial = Trial(t, candidate, score, kept, source, it.rejections, tuple(it.events), draft.error, changed)
        self._absorb(trial, replay=False)
        return trial

    def _gather_guidance(self, it: Iteration) -> dict[str, Any]:
        if self.session is None:
            return {}
        parts: list[dict[str, Any]] = []
        for mid, out in self.session.guide_all(it.index).items():
            if not out.ok:
                it.events.append(_fault_event(mid, "guide", out))
                continue
            try:
                g = check_guidance(out.value, self.space.names)
            except ContractError as exc:
                self._contract_fault(it, mid, "guide", str(exc))
                continue
            if "centre" in g and (problem := self._invalid(g["centre"])):
                self._contract_fault(it, mid, "guide", f"guidance 'centre' is not a valid config: {problem}")
                continue
            it.events.append(HookEvent(mid, "guide", Status.OK.value, bool(g)))
            it.path.parts[mid] = g
            parts.append(g)
        return merge_guidance(parts)

    def _propose(self, it: Iteration) -> tuple[Config, str]:
        for mid in self._active_with("propose"):
            assert self.session is not None
            out = self.session.call(mid, "propose", it.index, it.guidance)
            it.path.answer(mid, "propose", it.guidance, None, self._interpret("propose", out))
            if not out.ok:
                it.events.append(_fault_event(mid, "propose", out))
                continue
            if out.value is None:
                it.events.append(HookEvent(mid, "propose", Status.OK.value, False))
                continue
            problem = self._invalid(out.value)
            if problem:
                self._contract_fault(it, mid, "propose", problem)
                continue
            it.events.append(HookEvent(mid, "propose", Status.OK.value, True))
            return dict(out.value), f"mechanism:{mid}"
        config = self.proposer.propose(it.index, self.incumbent, it.guidance)
        it.path.based(it.guidance, config)
        return config, self.proposer.last_source

    def _review(self, it: Iteration, candidate: Config) -> tuple[Config, str | None]:
        reviewers = self._active_with("review")
        if reviewers and self.session is not None:  # the reviews, and the dry calls they allow, in one exchange
            ahead = self.session.has_ahead(reviewers[0], "review", it.index, it.guidance, candidate, False)
            dry = [] if ahead else self._first_dry(it, reviewers, candidate)  # predicted: came with them
            self.session.step([["review", it.index, reviewers, it.guidance, candidate],
                               *([["dry", it.index, dry]] if dry else [])])
        for mid in reviewers:
            assert self.session is not None
            out = self.session.call(mid, "review", it.index, it.guidance, candidate)
            it.path.answer(mid, "review", it.guidance, candidate, self._interpret("review", out))
            if not out.ok:
                it.events.append(_fault_event(mid, "review", out))
                continue
            value = out.value
            if value is None:
                it.events.append(HookEvent(mid, "review", Status.OK.value, False))
            elif isinstance(value, str):
                it.events.append(HookEvent(mid, "review", Status.OK.value, True, f"rejected: {value[:200]}"))
                return candidate, value
            elif problem := self._invalid(value):
                self._contract_fault(it, mid, "review", problem)
            else:
                changed = value != candidate
                it.events.append(HookEvent(mid, "review", Status.OK.value, changed))
                candidate = dict(value)
        return candidate, None

    # -- counterfactual activation (inner.counterfactual) ----------------------
    def _interpret(self, hook: str, out: Outcome) -> Answer:
        """A propose/review outcome as the selection reads it (the same branches as ``_propose``/``_review``)."""
        if not out.ok:
            return SKIP
        value = out.value
        if value is None:
            return ("none", None)
        if hook == "review" and isinstance(value, str):
            return ("reject", value)
        if self._invalid(value):
            return SKIP
        return ("config", dict(value))

    def _changed_by(self, it: Iteration, evaluated: Config) -> tuple[str, ...]:
        """The mechanisms without which this iteration would have evaluated another config.

        The dry calls it needs go to the worker a round at a time, each round in one exchange
        (``SandboxSession.step``); the answers are the same as one call at a time (a dry call restores
        the mechanism's state), and any the rounds did not get are made one by one."""
        if self.session is None or not self.settings.counterfactual or not it.path.order:
            return ()
        session = self.session
        for _ in range(ROUNDS):
            ahead = self._oracle(it, lambda m, h, g, c: session.has_ahead(m, h, it.index, g, c, dry=True))
            try:  # usually every dry call it needs came with the reviews
                return changed_by(self.space, evaluated, it.path, ahead, self.settings.max_rejections)
            except Pending:
                dry = self._pending_dry(it)
            session.step([["dry", it.index, dry]])
        return changed_by(self.space, evaluated, it.path, self._oracle(it, lambda *_: True),
                          self.settings.max_rejections)

    def _oracle(self, it: Iteration, ready: Callable[[str, str, dict[str, Any], Any], bool]) -> Oracle:
        """The counterfactual oracle of this iteration; a dry call for which ``ready`` is False raises
        :class:`Pending` instead of being made."""
        session = self.session
        assert session is not None
        memo = it.what_if

        def call_dry(mid: str, hook: str, guidance: dict[str, Any], candidate: Any) -> Answer:
            if mid not in session.active:
                return SKIP
            if not ready(mid, hook, guidance, candidate):
                raise Pending((mid, hook, guidance, candidate))
            return self._interpret(hook, session.call(mid, hook, it.index, guidance, candidate, dry=True))

        def what_if(attempt: int, guidance: dict[str, Any]) -> Config | None:
            key = (attempt, canonical(guidance))
            if key not in memo:
                memo[key] = self.proposer.what_if(it.index, it.incumbent, guidance, attempt)
            return memo[key]

        return Oracle(it.path, call_dry, what_if)

    def _first_dry(self, it: Iteration, reviewers: list[str], candidate: Config) -> list[list[Any]]:
        """The dry calls that go with the reviews of ``candidate`` (those the reviews answer left out)."""
        real = {(m, "review", canonical(it.guidance), canonical(candidate)) for m in reviewers}
        return [k for k in self._pending_dry(it) if (k[0], k[1], canonical(k[2]), canonical(k[3])) not in real]

    def _pending_dry(self, it: Iteration) -> list[list[Any]]:
        """The next dry call each counterfactual selection needs, given the answers known so far."""
        if self.session is None or not self.settings.counterfactual or not it.path.order or not it.checked:
            return []
        session = self.session
        oracle = self._oracle(it, lambda m, h, g, c: session.has_ahead(m, h, it.index, g, c, dry=True))
        return pending_calls(it.path, oracle, self.settings.max_rejections)

    def _contract_fault(self, it: Iteration, mid: str, hook: str, problem: str) -> None:
        """Record a value the host refused; the session disables the mechanism after repeated faults."""
        it.events.append(HookEvent(mid, hook, Status.CONTRACT_VIOLATION.value, False, problem[:500]))
        if self.session is not None:
            self.session.note_fault(mid, f"{hook}: {problem}")

    def _observe(self, trial: Trial, ahead: int | None = None) -> list[HookEvent]:
        """Observe a finished trial; ``ahead``: the next trial's index, whose guides and proposals the
        sandbox then makes in the same exchange (``sandbox.steps``)."""
        if self.session is None:
            return []
        spec = self._speculation.part(self, trial, ahead) if ahead is not None else None
        return [
            HookEvent(mid, "observe", out.status.value, False, "" if out.ok else out.message[:500])
            for mid, out in self.session.observe(trial.for_mechanisms(), ahead=ahead, spec=spec).items()
        ]

    def _evaluate(self, config: Config) -> tuple[float | None, str]:
        problem = self._invalid(config)
        if problem:
            return None, f"invalid candidate: {problem}"
        try:
            value = float(self.objective.evaluate(config))
        except ObjectiveError as exc:
            return None, f"objective failed: {exc}"
        if not math.isfinite(value):
            return None, f"objective returned a non-finite value {value!r}"
        return value, ""

    def _invalid(self, value: Any) -> str:
        try:
            self.space.validate(value)
        except SpaceError as exc:
            return str(exc)
        return ""

    def _absorb(self, trial: Trial, replay: bool) -> None:
        """Make ``trial`` part of the history: proposer, incumbent, and (on replay) mechanisms."""
        self.trials.append(trial)
        self.proposer.tell(trial)
        if trial.kept:
            self.incumbent = trial
        if replay and self.session is not None:
            self.session.observe(trial.for_mechanisms())


class _EvaluatedElsewhere:
    """The objective of a loop driven by ask/tell: it has a space, and nothing to evaluate here."""

    def __init__(self, space: Space) -> None:
        self._space = space

    @property
    def space(self) -> Space:
        return self._space

    def evaluate(self, config: Config) -> float:
        raise ObjectiveError("this inner loop is driven by ask/tell; its candidates are evaluated elsewhere")


def _fault_event(mid: str, hook: str, out: Outcome) -> HookEvent:
    return HookEvent(mid, hook, out.status.value, False, out.message[:500])


def run_inner(
    objective: Objective,
    mechanisms: Sequence[MechanismSource],
    settings: InnerSettings,
    seed: int,
    resume_from: Sequence[Trial] = (),
    on_trial: Callable[[Trial], None] | None = None,
    pool: SessionPool | None = DEFAULT_POOL,
) -> InnerResult:
    """Run one inner run (see :class:`InnerLoop`)."""
    return InnerLoop(objective, mechanisms, settings, seed, pool).run(resume_from, on_trial)
