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

Safety net: if the loop asks a mechanism for a hook at a trial with other
inputs than a call already made for it (a bug, never a mechanism's doing), the
worker is killed and the cache dropped, so the next call restarts the worker
and rebuilds every state by replaying the history (the contract's guarantee,
as after a fault), and ``inconsistencies`` counts it.
"""

from __future__ import annotations

import json
from typing import Any

from bilevel.mechanisms import spacekit
from bilevel.mechanisms.contract import ContractError, check_guidance, merge_guidance
from bilevel.sandbox.faults import Failure, FaultPolicy
from bilevel.sandbox.outcome import Outcome
from bilevel.sandbox.process import WorkerProcess, plain_json

Key = tuple[str, str, int, str, str, bool]
Part = list[Any]


_ENCODER = json.JSONEncoder(sort_keys=True, allow_nan=True)


def canonical(value: Any) -> str:
    """A key for plain data (guidance, candidates): ``json.dumps(value, sort_keys=True)``, without
    building an encoder per call."""
    return _ENCODER.encode(value)


def call_key(mech_id: str, hook: str, t: int, guidance: Any, candidate: Any, dry: bool) -> Key:
    return (mech_id, hook, int(t), canonical(guidance or {}), canonical(candidate), bool(dry))


class Steps(FaultPolicy):
    """Part of ``SandboxSession``: the cache of calls made ahead, and the ``step`` request."""

    _space: dict[str, Any]
    _worker: WorkerProcess | None
    round_trips: int = 0
    inconsistencies: int = 0

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
        candidate], ...]]``. Called by the inner loop just before it makes these calls itself.
        """
        self._check_open()
        if not self.active or self._worker is None or not self._worker.alive():
            return
        clean_parts = [plain_json(p, "step part") for p in parts]
        planned = self._planned(clean_parts)
        if not planned:
            return
        self._exchange(clean_parts, planned, [])

    def _planned(self, parts: list[Part]) -> list[tuple[str, str, int, Any, Any, bool]]:
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

    def _exchange(self, parts: list[Part], planned: list[tuple[str, str, int, Any, Any, bool]],
                  observed: list[str]) -> tuple[list[Outcome], Failure | None]:
        """Send one ``step`` request whose first calls are the observe calls of ``observed``; cache the rest."""
        calls = [(m, "observe") for m in observed] + [(p[0], p[1]) for p in planned]
        outcomes, failure = self._stream({"op": "step", "parts": parts}, calls, charge=True, partial=True)
        guidance: dict[str, Any] | None = None
        made = list(outcomes)
        if failure is not None and not failure.blameless and failure.index >= len(observed):
            made.append(failure.outcome)  # the call that failed was made: the loop's own call gets its outcome
            failure = None
        for i, out in enumerate(made):
            mid = calls[i][0]
            if i < len(observed):
                continue
            self._account(mid, out)
            _, hook, t, g, cand, dry = planned[i - len(observed)]
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

    def _ahead_parts(self, t: int) -> tuple[list[Part], list[tuple[str, str, int, Any, Any, bool]]]:
        """The guide and propose calls of trial ``t``, to go with the last trial's ``observe``."""
        guides = self._active_with("guide")
        proposers = self._active_with("propose")
        parts: list[Part] = []
        if guides:
            parts.append(["guide", t, guides])
        if proposers:
            parts.append(["propose", t, proposers])
        return parts, self._planned(parts)

    # provided by SandboxSession / FaultPolicy
    def _stream(self, request: dict[str, Any], calls: list[tuple[str, str]], charge: bool,
                partial: bool = False) -> tuple[list[Outcome], Failure | None]:
        raise NotImplementedError

    def _kill_worker(self) -> None:
        raise NotImplementedError

    def _check_open(self) -> None:
        raise NotImplementedError
