"""The model of a run: its references for both loops, the author's recorded caller, and the cost caps.

One setting (``[llm] model``, ``--model``) drives the inner proposer and the
outer author; ``[llm] author_model`` (``--author-model``) names another
model for the author, for ablations only, and the run records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bilevel.inner.chat import Caller, CallRecord, ChatRequest, ChatSettings, ModelRef
from bilevel.outer.errors import BudgetExhausted
from bilevel.outer.llm import model_ref
from bilevel.runs.spec import RunSpec
from bilevel.runs.store import RunRecorder

LEVELS = ("inner", "author")


def chat_settings(spec: RunSpec, level: str = "inner") -> ChatSettings:
    """The call settings of one level: the proposer's (``max_tokens``, ``timeout_s``, ``temperature``)
    or the author's (``author_answer_tokens``, ``author_timeout_s``, ``author_temperature``)."""
    llm = spec["llm"]
    if level == "author":
        return ChatSettings(temperature=llm["author_temperature"], seed=llm["seed"],
                            max_tokens=llm["author_answer_tokens"], timeout_s=llm["author_timeout_s"],
                            retries=llm["retries"], backoff_s=llm["backoff_s"])
    return ChatSettings(temperature=llm["temperature"], seed=llm["seed"], max_tokens=llm["max_tokens"],
                        timeout_s=llm["timeout_s"], retries=llm["retries"], backoff_s=llm["backoff_s"])


def _ref(spec: RunSpec, name: str, level: str = "inner") -> ModelRef:
    llm = spec["llm"]
    options = {"stream": "true" if llm["stream"] else "false", "keep_alive": llm["keep_alive"],
               "prompt_cache": "true" if llm["prompt_cache"] else "false"}
    if llm.get("adapter") and name.startswith("mlx:"):  # the tuned author (issue 16)
        options.update({"adapter": llm["adapter"], "adapter_hash": llm.get("adapter_hash", "")})
    if level == "inner":
        options["proposals_per_call"] = str(llm["proposals_per_call"])
    return model_ref(name, chat_settings(spec, level), llm["prices"], options)


def inner_model(spec: RunSpec) -> ModelRef | None:
    """The inner proposer's model, or None when the run has none or ``[llm] inner = "numeric"`` (the base
    strategy proposes in the inner loop; the model writes mechanisms only)."""
    llm = spec["llm"]
    return _ref(spec, llm["model"]) if llm["model"] and llm["inner"] == "model" else None


def author_model(spec: RunSpec) -> ModelRef | None:
    """The author's model: the same as the inner proposer's unless an ablation named another."""
    llm = spec["llm"]
    name = llm["author_model"] or llm["model"]
    return _ref(spec, name, "author") if name else None


INNER_WORDS = {"model": "model (the model proposes in the inner loop too)",
               "numeric": "numeric (the model writes mechanisms; the base strategy proposes)"}


def inner_mode(spec: dict[str, Any]) -> str:
    """``[llm] inner`` of a recorded spec in words (runs recorded before the key existed used the model);
    ``-`` for a run without a model. Shown by ``show`` and ``compare``."""
    llm = spec.get("llm", {})
    if not llm.get("model"):
        return "-"
    return INNER_WORDS.get(str(llm.get("inner", "model")), str(llm.get("inner")))


def check_models(spec: RunSpec) -> None:
    """Build each model once, so a missing key, package or path, or a local server that is down or lacks
    the model, fails before anything is recorded."""
    for ref in (inner_model(spec), author_model(spec)):
        if ref is not None:
            model = ref.build()
            probe = getattr(model, "probe", None)
            if callable(probe):
                probe()


@dataclass(frozen=True)
class Caps:
    """Hard caps per level (0: none): tokens (in, out and prompt-cache writes and reads), US dollars,
    model seconds."""

    tokens: int
    usd: float
    wall_s: float

    @classmethod
    def of(cls, spec: RunSpec, level: str) -> Caps:
        llm = spec["llm"]
        return cls(llm[f"{level}_max_tokens"], llm[f"{level}_max_usd"], llm[f"{level}_max_wall_s"])

    def exceeded(self, used: dict[str, Any]) -> str | None:
        tokens = sum(int(used.get(k, 0)) for k in ("tokens_in", "tokens_out", "cache_write", "cache_read"))
        if self.tokens and tokens >= self.tokens:
            return f"token cap of {self.tokens} reached ({tokens} used)"
        if self.usd and used.get("cost_usd", 0.0) >= self.usd:
            return f"money cap of ${self.usd:g} reached (${used['cost_usd']:.4f} spent)"
        if self.wall_s and used.get("latency_s", 0.0) >= self.wall_s:
            return f"model-time cap of {self.wall_s:g} s reached ({used['latency_s']:.1f} s used)"
        return None


class LedgerGuard:
    """Checks the caps against the run's ledger: before every author call, and before every candidate.

    The author's caps are exact (checked before each call). The inner
    proposer's calls run inside inner runs, possibly in other processes, so
    its caps are checked before each candidate and each generation: a level
    overshoots by at most the calls of the evaluations in flight.
    """

    def __init__(self, spec: RunSpec, recorder: RunRecorder) -> None:
        self.caps = {level: Caps.of(spec, level) for level in LEVELS}
        self.recorder = recorder

    def reason(self) -> str | None:
        """Why the run must stop now, or None (called by the outer loop before each candidate)."""
        ledger = self.recorder.ledger()
        for level in LEVELS:
            why = self.caps[level].exceeded(ledger.get(level, {}))
            if why:
                return f"{level} {why}; continue with: bilevel resume RUN --cap {level}_max_...=HIGHER"
        return None

    def before_author_call(self, request: ChatRequest) -> None:
        why = self.reason()
        if why is not None:
            self.recorder.record_event(f"budget:author:{request.context}", "budget_stop",
                                       {"level": "author", "context": request.context, "reason": why})
            raise BudgetExhausted(why)


def author_caller(spec: RunSpec, recorder: RunRecorder, guard: LedgerGuard) -> Caller | None:
    """The author's caller: answers from this run's records first (a resumed run pays nothing twice),
    checks the caps before each real call, and records each new call at once."""
    ref = author_model(spec)
    if ref is None:
        return None

    def lookup(key: str, occurrence: int) -> CallRecord | None:
        found = recorder.find_llm_call(key, occurrence)
        return None if found is None else CallRecord.from_json(found)

    return Caller(ref, lookup=lookup, before_call=guard.before_author_call,
                  sink=lambda rec: recorder.record_llm_call(rec.to_json()))


def ledger_lines(ledger: dict[str, dict[str, Any]], spec: dict[str, Any]) -> list[str]:
    """The ledger as lines for ``bilevel show``: per level, calls, tokens, dollars, model seconds, caps."""
    llm = spec.get("llm", {})
    lines = [f"model: {llm.get('model') or '(none)'}"
             + (f"; author model: {llm['author_model']} (ablation)" if llm.get("author_model") else "")
             + (f"; [llm] inner = {inner_mode(spec)}" if llm.get("model") else "")
             + (f"; adapter: {llm['adapter']} (sha256 {llm.get('adapter_hash', '')[:16]})" if llm.get("adapter") else "")]
    for level in LEVELS:
        used = ledger.get(level, {})
        caps = [f"{k.split('_max_')[1]}<={llm[k]:g}" for k in sorted(llm) if k.startswith(f"{level}_max_") and llm[k]]
        cache = (f"cache {used.get('cache_write', 0)} written, {used.get('cache_read', 0)} read, "
                 if used.get("cache_write") or used.get("cache_read") else "")
        lines.append(f"{level}: {used.get('calls', 0)} calls ({used.get('failed', 0)} failed), "
                     f"{used.get('tokens_in', 0)} tokens in, {used.get('tokens_out', 0)} out, {cache}"
                     f"${used.get('cost_usd', 0.0):.4f}, {used.get('latency_s', 0.0):.1f} s"
                     + (f"; caps: {', '.join(caps)}" if caps else ""))
    return lines
