"""Records of one inner run: what each trial was, where it came from, which hooks fired."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bilevel.inner.space import Config


@dataclass(frozen=True)
class HookEvent:
    """One hook call on one mechanism during one trial.

    ``changed`` is True when the call's own output did something: guidance that
    was not empty, a proposal that was used, a review that replaced or rejected
    the candidate. Whether that changed the search is ``Trial.changed_by``
    (counterfactual: ``inner.counterfactual``), which the judge counts. ``status`` is a ``sandbox.outcome.Status`` value.
    """

    mechanism: str
    hook: str
    status: str
    changed: bool
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "hook": self.hook, "status": self.status,
                "changed": self.changed, "message": self.message}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HookEvent:
        return cls(d["mechanism"], d["hook"], d["status"], bool(d["changed"]), d.get("message", ""))


@dataclass(frozen=True)
class Trial:
    """One evaluated candidate of an inner run. Scores are minimised; None means the evaluation failed."""

    index: int
    config: Config
    score: float | None
    kept: bool
    source: str
    rejections: int = 0
    hooks: tuple[HookEvent, ...] = ()
    error: str = ""
    changed_by: tuple[str, ...] = ()  # mechanisms without which another config would have been evaluated

    def for_mechanisms(self) -> dict[str, Any]:
        """The trial dict of the mechanism contract."""
        return {"index": self.index, "config": self.config, "score": self.score,
                "kept": self.kept, "source": self.source}

    def to_json(self) -> dict[str, Any]:
        return {**self.for_mechanisms(), "rejections": self.rejections,
                "hooks": [h.to_json() for h in self.hooks], "error": self.error, "changed_by": list(self.changed_by)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Trial:
        return cls(int(d["index"]), d["config"], d["score"], bool(d["kept"]), d["source"],
                   int(d.get("rejections", 0)), tuple(HookEvent.from_json(h) for h in d.get("hooks", [])),
                   d.get("error", ""), tuple(d.get("changed_by", ())))


def beats_incumbent(score: float | None, incumbent: Trial | None) -> bool:
    """The inner loop's fixed keep rule: a trial becomes the incumbent only if it has a score and that
    score is strictly lower than the incumbent's (a tie keeps the incumbent). Called by the inner loop
    for every finished trial, and by ``runs.optuna_sampler`` for every optuna trial it is told."""
    if score is None:
        return False
    return incumbent is None or incumbent.score is None or score < incumbent.score


@dataclass(frozen=True)
class InnerResult:
    """All trials of one inner run, with the best-so-far curve."""

    trials: tuple[Trial, ...]
    mechanisms: tuple[str, ...] = ()
    sandbox_layers: tuple[str, ...] = field(default=())
    llm_calls: tuple[dict[str, Any], ...] = ()  # the LLM proposer's call records (``inner.chat.CallRecord`` JSON)
    # mechanisms that failed to load or were disabled during the run, with why (issue 11: who failed):
    # {"mechanism", "hook": "load" | "disabled", "status", "message", "layer"}
    mechanism_faults: tuple[dict[str, str], ...] = ()

    @property
    def best_so_far(self) -> list[float]:
        out: list[float] = []
        best = float("inf")
        for t in self.trials:
            if t.score is not None and t.score < best:
                best = t.score
            out.append(best)
        return out

    @property
    def best(self) -> Trial | None:
        scored = [t for t in self.trials if t.score is not None]
        return min(scored, key=lambda t: (t.score, t.index)) if scored else None

    def hook_events(self) -> list[HookEvent]:
        return [h for t in self.trials for h in t.hooks]

    def to_json(self) -> dict[str, Any]:
        return {"trials": [t.to_json() for t in self.trials], "mechanisms": list(self.mechanisms),
                "sandbox_layers": list(self.sandbox_layers), "llm_calls": list(self.llm_calls),
                "mechanism_faults": list(self.mechanism_faults)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> InnerResult:
        return cls(tuple(Trial.from_json(t) for t in d["trials"]), tuple(d.get("mechanisms", [])),
                   tuple(d.get("sandbox_layers", [])), tuple(d.get("llm_calls", [])),
                   tuple(d.get("mechanism_faults", [])))
