"""Several hook calls in one exchange with the worker: the host side of the ``step`` request.

The inner loop's calls stay what they were (``SandboxSession.guide_all``,
``call``, ``observe``, one at a time, in the same order with the same inputs);
what changes is when they reach the worker. A ``step`` request carries calls the
loop is about to make: the next trial's guides and proposals with the last
trial's ``observe``, the dry calls of the counterfactual check with the reviews.
The worker runs them in order and stops where the next call could depend on a
decision only the host makes (``sandbox.hooks.Worker.op_step``), so every call
it makes is one the loop makes next. Each outcome is timed, blamed and counted
as it arrives, exactly as a single call's (``SandboxSession._stream``), and kept
in a cache under the call's full inputs (mechanism, hook, trial, guidance,
candidate, dry); the loop's call then takes it from there instead of asking the
worker. A call the loop makes that is not in the cache goes to the worker as before.
A fault counts (``FaultPolicy._account``) when the loop takes the outcome, in the
loop's order: where the loop would have made the call itself, so a mechanism a
fault disables is disabled at the same point of the loop as with one call per
exchange; an outcome the loop never takes (a dry call it no longer needs) never counts.

The reviews of the next trial can go with the last trial's ``observe`` too:
``["spec", t, reviewers, alternatives]`` carries the loop's predictions of the
next trial's guidance, each with the base proposer's candidate for it and the
dry calls that would follow (``inner.speculation``). The worker makes those of
the alternative that holds exactly, if any (``Worker.step_spec``); the host
decides the same from the outcomes it reads (:meth:`Steps._held`) and so knows
which calls to expect. ``speculations`` counts the exchanges that carried one,
``mispredictions`` those whose reviews were not made.

Safety net: if the loop asks a mechanism for a hook at a trial with other
inputs than a call already made for it (a bug, never a mechanism's doing), the
worker is killed and the cache dropped, so the next call restarts the worker
and rebuilds every state by replaying the history (the contract's guarantee,
as after a fault), and ``inconsistencies`` counts it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bilevel.mechanisms import spacekit
from bilevel.mechanisms.contract import ContractError, check_guidance, merge_guidance
from bilevel.sandbox.faults import Failure, FaultPolicy
from bilevel.sandbox.outcome import Outcome
from bilevel.sandbox.plaincopy import canonical_json
from bilevel.sandbox.process import WorkerProcess, plain_json

Key = tuple[str, str, int, str, str, bool]
Part = list[Any]
Planned = tuple[str, str, int, Any, Any, bool]
Then = Callable[[list[Outcome]], list[tuple[str, str]]]


canonical = canonical_json
"""A key for plain data (guidance, candidates): ``json.dumps(value, sort_keys=True, allow_nan=True)``."""


def call_key(mech_id: str, hook: str, t: int, guidance: Any, candidate: Any, dry: bool) -> Key:
    return (mech_id, hook, int(t), canonical(guidance or {}), canonical(candidate), bool(dry))


class Steps(FaultPolicy):
    """Part of ``SandboxSession``: the cache of calls made ahead, and the ``step`` request."""

    _space: dict[str, Any]
    _worker: WorkerProcess | None
    round_trips: int = 0
    inconsistencies: int = 0
    speculations: int = 0  # exchanges that carried predicted reviews (``spec``)
    mispredictions: int = 0  # of those, the ones whose reviews were not made (no alternative held)

    def _reset_steps(self) -> None:
        self._cache: dict[Key, Outcome] = {}
        self._made: dict[tuple[str, str, int], Key] = {}  # (mech, hook, t) -> key of a real call made ahead
        self._guided: tuple[int, list[str]] | None = None

    # -- what the session's calls look up ---------------------------------------
    def _take(self, mech_id: str, hook: str, t: int, guidance: Any, candidate: Any, dry: bool) -> Outcome | None:
        """The outcome of a call made ahead with exactly these inputs (removed from the cache), else None."""
        key = call_key(mech_id, hook, t, guidance, candidate, dry)
        found = self._cache.pop(key, None)
        if found is not None:
            if not dry:
                self._made.pop((mech_id, hook, int(t)), None)
            self._account(mech_id, found)  # its fault counts now, where the loop makes the call (module doc)
            return found
        if not dry and (mech_id, hook, int(t)) in self._made:
            self._inconsistent()
        return None

    def has_ahead(self, mech_id: str, hook: str, t: int, guidance: Any, candidate: Any, dry: bool) -> bool:
        """Whether a call with exactly these inputs was made ahead and not taken yet."""
        return call_key(mech_id, hook, t, guidance, candidate, dry) in self._cache

    def _take_guides(self, t: int) -> dict[str, Outcome] | None:
        """The guide outcomes made ahead for trial ``t``, in the order they were made, else None."""
        if self._guided is None or self._guided[0] != t:
            return None
        mechs = self._guided[1]
        self._guided = None
        out = {}
        for mid in mechs:
            found = self._take(mid, "guide", t, {}, None, False)
            if found is None:
                return None
            out[mid] = found
        return out

    def _inconsistent(self) -> None:
        self.inconsistencies += 1
        for key in self._made.values():  # faults of calls made ahead and never taken still count
            if key in self._cache:
                self._account(key[0], self._cache[key])
        self._reset_steps()
        self._kill_worker()

    def _forget_ahead(self) -> None:
        """Called before a new trial's calls are made ahead: a real call made ahead and never asked for
        is an inconsistency; unused dry answers are simply dropped."""
        if self._made:
            self._inconsistent()
        self._reset_steps()

    # -- the request -------------------------------------------------------------
    def step(self, parts: list[Part]) -> None:
        """Make the calls of ``parts`` ahead, in one exchange (see the module doc); outcomes go to the cache.

        Parts: ``["review", t, mechs, guidance, candidate]`` and ``["dry", t, [[mech, hook, guidance,
        candidate], ...]]``. Called by the inner loop just before it makes these calls itself. Reviews
        already made ahead (predicted, with the last observe) are not sent again, nor is anything with them.
        """
        self._check_open()
        if not self.active or self._worker is None or not self._worker.alive():
            return
        clean_parts = [plain_json(p, "step part") for p in parts]
        first = clean_parts[0] if clean_parts else None
        if first is not None and first[0] == "review" and first[2] and self.has_ahead(
                first[2][0], "review", first[1], first[3], first[4], False):
            return  # these reviews (and the dry calls after them) were made ahead, with the last observe
        planned = self._planned(clean_parts)
        if not planned:
            return
        if any(not dry and (m, h, int(t)) in self._made for m, h, t, _, _, dry in planned):
            self._inconsistent()  # a call made ahead with other inputs: rebuild, never call it twice
            return
        self._exchange(clean_parts, planned, [])

    def _planned(self, parts: list[Part]) -> list[Planned]:
        planned = []
        for part in parts:
            if part[0] == "review":
                planned += [(m, "review", part[1], part[3], part[4], False) for m in part[2]]
            elif part[0] == "dry":
                planned += [(m, h, part[1], g, c, True) for m, h, g, c in part[2]]
            elif part[0] == "guide":
                planned += [(m, "guide", part[1], {}, None, False) for m in part[2]]
            elif part[0] == "propose":
                planned += [(m, "propose", part[1], None, None, False) for m in part[2]]
        for mid, _, _, _, _, _ in planned:
            entry = self._entries[mid]
            if not entry.enabled or entry.spent_s >= self.limits.run_timeout_s or self._deadline_left() <= 0:
                return []  # the step-by-step path disables it with the reason, as before
        return planned

    def _exchange(self, parts: list[Part], planned: list[Planned],
                  observed: list[str]) -> tuple[list[Outcome], Failure | None]:
        """Send one ``step`` request whose first calls are the observe calls of ``observed``; cache the rest.

        A last part ``["spec", ...]`` is planned only once the calls before it are in (:meth:`_held`)."""
        calls = [(m, "observe") for m in observed] + [(p[0], p[1]) for p in planned]
        spec = parts[-1] if parts and parts[-1][0] == "spec" else None
        held: list[bool] = []

        def then(outcomes: list[Outcome]) -> list[tuple[str, str]]:
            more = self._held(spec, outcomes[len(observed):], planned) if spec is not None else []
            planned.extend(more)
            held.append(bool(more))
            return [(p[0], p[1]) for p in more]

        outcomes, failure = self._stream({"op": "step", "parts": parts}, calls, charge=True, partial=True,
                                         then=then if spec is not None else None)
        if spec is not None:
            self.speculations += 1
            self.mispredictions += 0 if any(held) else 1
        guidance: dict[str, Any] | None = None
        made = list(outcomes)
        if failure is not None and not failure.blameless and failure.index >= len(observed):
            made.append(failure.outcome)  # the call that failed was made: the loop's own call gets its outcome
            failure = None
        for i, out in enumerate(made):
            if i < len(observed):
                continue
            mid, hook, t, g, cand, dry = planned[i - len(observed)]
            if hook == "guide":
                self._guided = (t, [*self._guided[1], mid] if self._guided else [mid])
            if hook == "propose":
                if guidance is None:
                    guidance = self._merged(t)
                    if guidance is None:
                        self._inconsistent()
                        return outcomes[:len(observed)], failure
                g = guidance
            key = call_key(mid, hook, t, g, cand, dry)
            self._cache[key] = out
            if not dry:
                self._made[(mid, hook, int(t))] = key
        return outcomes[:len(observed)], failure

    def _merged(self, t: int) -> dict[str, Any] | None:
        """The guidance merged from the guides made ahead for ``t`` (as the inner loop merges it)."""
        names = spacekit.names(self._space)
        parts = []
        for mid in self._guided[1] if self._guided and self._guided[0] == t else []:
            out = self._cache[call_key(mid, "guide", t, {}, None, False)]
            try:
                parts.append(check_guidance(out.value, names))
            except ContractError:
                return None
        return merge_guidance(parts)

    def _ahead_parts(self, t: int, spec: Part | None = None) -> tuple[list[Part], list[Planned]]:
        """The guide and propose calls of trial ``t``, to go with the last trial's ``observe``, and the
        predicted reviews ``spec`` where they are still the loop's next calls (same reviewers, within budget)."""
        guides = self._active_with("guide")
        proposers = self._active_with("propose")
        parts: list[Part] = []
        if guides:
            parts.append(["guide", t, guides])
        if proposers:
            parts.append(["propose", t, proposers])
        planned = self._planned(parts) if parts else []
        if parts and not planned:
            return [], []
        if spec is not None:
            spec = plain_json(spec, "spec")
            reviewers = self._active_with("review")
            if spec[1] == t and spec[2] == reviewers and reviewers and spec[3] and self._planned(
                    [["review", t, reviewers, {}, None]]):
                parts.append(spec)
        return parts, planned

    def _held(self, spec: Part, outcomes: list[Outcome], planned: list[Planned]) -> list[Planned]:
        """The calls of the first alternative of ``spec`` that holds, given the outcomes of ``planned``
        (the guides and proposals before it), else none: the worker's decision (``Worker.step_spec``),
        made again with the same checks on the same values. Called by :meth:`_exchange` while it reads the
        exchange, once the outcomes before the ``spec`` part are in, to know which exit lines come next."""
        if len(outcomes) != len(planned) or not all(o.ok for o in outcomes):
            return []
        names = spacekit.names(self._space)
        pairs: list[list[Any]] = []
        for (mid, hook, *_), out in zip(planned, outcomes, strict=True):
            if hook == "propose" and out.value is not None:
                return []
            if hook == "guide":
                try:
                    pairs.append([mid, check_guidance(json.loads(json.dumps(out.value)), names)])
                except (ContractError, ValueError, TypeError):
                    return []
        if any("centre" in g for _, g in pairs):
            return []
        mine = canonical(pairs)
        t, reviewers = int(spec[1]), spec[2]
        for alt_pairs, candidate, dry in spec[3]:
            if canonical(alt_pairs) == mine:
                guidance = merge_guidance([g for _, g in pairs])
                return ([(m, "review", t, guidance, candidate, False) for m in reviewers]
                        + [(m, h, t, g, c, True) for m, h, g, c in dry])
        return []

    # provided by SandboxSession / FaultPolicy
    def _stream(self, request: dict[str, Any], calls: list[tuple[str, str]], charge: bool,
                partial: bool = False, then: Then | None = None) -> tuple[list[Outcome], Failure | None]:
        raise NotImplementedError

    def _kill_worker(self) -> None:
        raise NotImplementedError

    def _check_open(self) -> None:
        raise NotImplementedError
