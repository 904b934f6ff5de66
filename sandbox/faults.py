"""The session's fault policy: who is blamed for what, and when a mechanism is disabled.

POLICY_VIOLATION, TIMEOUT and MEMORY disable a mechanism at once; CRASH and
CONTRACT_VIOLATION after ``Limits.max_faults``; a disabled mechanism answers
every later call with the outcome that disabled it. A worker that died
without a signal of its own is a CRASH; one killed by a limit maps to the
status of that limit (:func:`death_outcome`). :class:`FaultPolicy` is mixed
into ``sandbox.session.SandboxSession``.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from dataclasses import dataclass

from bilevel.sandbox.outcome import Outcome, SandboxError, Status
from bilevel.sandbox.process import Limits


@dataclass
class Entry:
    """The host's bookkeeping for one mechanism of the stack."""

    mech_id: str
    source: str
    position: int
    hooks: tuple[str, ...] = ()
    enabled: bool = True
    faults: int = 0
    spent_s: float = 0.0
    disabled: Outcome | None = None


@dataclass(frozen=True)
class Failure:
    """The worker stopped answering during call ``index`` of a request; ``outcome`` blames ``mech_id``.

    ``index`` is -1 when the worker failed before acknowledging the request. Then ``mech_id`` is
    the mechanism whose code ran last in that worker when the failure is its doing (a stall, a
    line on the channel or a death of its own between requests), or empty: nobody is to blame
    (the worker was killed from outside, or its server died).
    """

    index: int
    mech_id: str
    outcome: Outcome

    @property
    def blameless(self) -> bool:
        return not self.mech_id


UNAVAILABLE = Failure(-1, "", Outcome(Status.CRASH, message="the worker was unavailable", layer="host"))


SIGNAL_OUTCOMES: dict[int, tuple[Status, str]] = {
    signal.SIGXCPU: (Status.TIMEOUT, "rlimit"),
    signal.SIGKILL: (Status.MEMORY, "rlimit"),
    signal.SIGXFSZ: (Status.POLICY_VIOLATION, "rlimit"),
    signal.SIGSYS: (Status.POLICY_VIOLATION, "seccomp"),
}


def death_outcome(returncode: int | None, hook: str, elapsed: float) -> Outcome:
    """What a worker that died by itself during ``hook`` means."""
    if returncode is not None and returncode < 0:
        sig = -returncode
        status, layer = SIGNAL_OUTCOMES.get(sig, (Status.CRASH, "host"))
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        return Outcome(status, message=f"the worker died with {name} during {hook}", elapsed_s=elapsed, layer=layer)
    return Outcome(Status.CRASH, message=f"the worker exited (status {returncode}) during {hook}",
                   elapsed_s=elapsed, layer="host")


class FaultPolicy:
    """Bookkeeping of faults and budgets per mechanism; the session sets the three attributes below.

    ``deadline`` (a ``time.monotonic()`` instant, or None) is an overall wall-clock deadline over
    every call of the session, across reloads: a caller such as the conformance check sets it so
    that no reload or restart can give a mechanism more time.
    """

    limits: Limits
    _entries: dict[str, Entry]
    _order: list[str]
    deadline: float | None = None

    @property
    def active(self) -> list[str]:
        """Enabled mechanism ids, in stack order."""
        return [mid for mid in self._order if self._entries[mid].enabled]

    def _within_budget(self, mechs: list[str], results: dict[str, Outcome]) -> list[str]:
        """Drop (and disable, with TIMEOUT) mechanisms whose run budget is spent."""
        keep = []
        for mid in mechs:
            entry = self._entries[mid]
            if not entry.enabled:
                continue
            if entry.spent_s >= self.limits.run_timeout_s or self._deadline_left() <= 0:
                what = (f"run budget of {self.limits.run_timeout_s:.3g} s" if self._deadline_left() > 0
                        else "overall deadline")
                out = Outcome(Status.TIMEOUT, layer="timeout", message=f"{what} exhausted")
                results[mid] = out
                self._disable(mid, out)
            else:
                keep.append(mid)
        return keep

    def _deadline_left(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def _call_limit(self, mech_id: str, charge: bool) -> tuple[float, str]:
        overall = self._deadline_left()
        if overall < self.limits.call_timeout_s and overall < self.limits.run_timeout_s - self._entries[mech_id].spent_s:
            return max(overall, 0.0), "overall deadline"
        if not charge:
            return self.limits.call_timeout_s, "call timeout"
        left = self.limits.run_timeout_s - self._entries[mech_id].spent_s
        if left < self.limits.call_timeout_s:
            return max(left, 0.0), "run budget"
        return self.limits.call_timeout_s, "call timeout"

    def _account(self, mech_id: str, outcome: Outcome) -> None:
        """Count a fault; CRASH and CONTRACT faults disable at ``max_faults``, the others at once."""
        if outcome.ok:
            return
        entry = self._entries[mech_id]
        if outcome.status in (Status.CRASH, Status.CONTRACT_VIOLATION):
            entry.faults += 1
            if entry.faults < self.limits.max_faults:
                return
            outcome = dataclasses.replace(outcome, message=f"{entry.faults} faults, last: {outcome.message}")
        self._disable(mech_id, outcome)

    def _disable(self, mech_id: str, outcome: Outcome) -> None:
        entry = self._entry(mech_id)
        if entry.enabled:
            entry.enabled = False
            entry.disabled = outcome

    def _disabled_outcome(self, entry: Entry) -> Outcome:
        why = entry.disabled or Outcome(Status.CONTRACT_VIOLATION, message="disabled", layer="host")
        return Outcome(why.status, message=f"mechanism disabled: {why.message}", layer=why.layer)

    def _active_with(self, hook: str) -> list[str]:
        return [mid for mid in self.active if hook in self._entries[mid].hooks]

    def _entry(self, mech_id: str) -> Entry:
        try:
            return self._entries[mech_id]
        except KeyError:
            raise SandboxError(f"unknown mechanism {mech_id!r}") from None

