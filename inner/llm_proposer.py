"""The LLM proposer: asks the chat model for one change to the incumbent, as JSON.

Called by the inner loop exactly like the other base proposers (see
:class:`inner.proposers.Proposer`). Per ``propose`` call:

1. the model sees the space, the incumbent, the mechanisms' guidance and the
   recent history (prompts in ``inner/prompts``, versioned, hashed);
2. its answer is parsed strictly (:func:`parse_proposal`): one JSON object
   ``{"changes": {...}, "hypothesis": "..."}``; safe repairs are made and
   recorded (clip a number into its bounds, round an integer, renormalise a
   simplex, drop a change to a frozen parameter); anything else is rejected
   with the reason, which is fed back to the model for the next retry;
3. after ``1 + retries`` rejected answers (or failed calls), the fallback
   proposer (greedy or random, stateless) proposes, and the trial's source
   says so (``base:llm-fallback``).

Every call is kept as a :class:`~inner.chat.CallRecord` with its outcome;
:meth:`LLMProposer.call_records` hands them to the inner loop, which returns
them with the inner run's result so the run store keeps them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from bilevel.inner.chat import Caller, ChatRequest, ModelRef
from bilevel.inner.proposers import GreedyProposer, Proposer, RandomProposer
from bilevel.inner.records import Trial
from bilevel.inner.search_config import SearchConfig, Strategy
from bilevel.inner.space import CategoricalParam, Config, FloatParam, IntParam, Space, SpaceError

PROMPT_DIR = Path(__file__).parent / "prompts"
PROMPT_VERSION = "proposer_v1"  # one proposal per call
BATCH_PROMPT_VERSION = "proposer_batch_v1"  # several proposals per call ([llm] proposals_per_call > 1)
HISTORY_SHOWN = 8
FALLBACK_SUFFIX = "-fallback"


@lru_cache(maxsize=4)
def prompt_texts(version: str = PROMPT_VERSION) -> tuple[str, str, str]:
    """(system prompt, user template, hash of both) of a prompt version."""
    system = (PROMPT_DIR / f"{version}.txt").read_text(encoding="utf-8")
    user = (PROMPT_DIR / f"{version.replace('_v', '_user_v')}.txt").read_text(encoding="utf-8")
    digest = hashlib.sha256((system + "\0" + user).encode()).hexdigest()[:16]
    return system, user, digest


class ProposalRejected(ValueError):
    """The model's answer cannot be used; the message says why (it is fed back to the model)."""


def _extract_json(text: str) -> Any:
    """The one JSON object in ``text`` (code fences allowed around it)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ProposalRejected("no JSON object in the answer; answer with one JSON object")
    try:
        return json.loads(text[start:end + 1])
    except json.JSONDecodeError as exc:
        raise ProposalRejected(f"the JSON object does not parse: {exc}") from exc


def _number(name: str, value: Any) -> float:
    """A finite float, or ProposalRejected (a bool, a string, NaN, inf or an int too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProposalRejected(f"{name} must be a finite number, got {str(value)[:80]!r}")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise ProposalRejected(f"{name} must be a finite number, got {str(value)[:80]}")
    return x


def _repair_value(space: Space, name: str, value: Any, repairs: list[str]) -> Any:
    p = space.param(name)
    if isinstance(p, FloatParam | IntParam):
        x = _number(name, value)
        if isinstance(p, IntParam) and x != round(x):
            repairs.append(f"rounded {name} {x:g} -> {round(x)}")
            x = float(round(x))
        clipped = min(max(x, p.low), p.high)
        if clipped != x:
            repairs.append(f"clipped {name} {x:g} into [{p.low:g}, {p.high:g}]")
        return int(clipped) if isinstance(p, IntParam) else clipped
    if isinstance(p, CategoricalParam):
        match = [c for c in p.choices if type(c) is type(value) and c == value]  # True is not 1, 1.0 is not 1
        if not match:
            raise ProposalRejected(f"{name}={str(value)[:80]!r} is not one of {list(p.choices)}")
        return match[0]
    if not isinstance(value, dict) or set(value) != set(p.domains):
        raise ProposalRejected(f"{name} must map exactly the domains {list(p.domains)} to weights")
    weights = {d: _number(f"{name}.{d}", w) for d, w in value.items()}
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ProposalRejected(f"{name}: weights must be >= 0 and not all zero")
    top = max(weights.values())  # scale first: 1e308 + 1e308 must not overflow
    total = math.fsum(w / top for w in weights.values())
    if abs(total * top - 1.0) > 1e-9:
        repairs.append(f"renormalised {name} (weights summed to {total * top:.4g})")
    return {d: weights[d] / top / total for d in p.domains}


def parse_proposal(text: str, space: Space, incumbent: Config, frozen: set[str]) -> tuple[Config, str, list[str]]:
    """The config, hypothesis and repairs of an answer; ProposalRejected says why it cannot be used."""
    data = _extract_json(text)
    if not isinstance(data, dict) or not isinstance(data.get("changes"), dict):
        raise ProposalRejected('the answer must be {"changes": {...}, "hypothesis": "..."}')
    return apply_proposal(data, space, incumbent, frozen)


def parse_batch(text: str, space: Space, incumbent: Config, frozen: set[str],
                wanted: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The usable proposals of a batch answer (``{"proposals": [...]}``), each checked against the
    incumbent now, and why each unusable one was dropped; ProposalRejected when none is usable."""
    data = _extract_json(text)
    items = data.get("proposals") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise ProposalRejected('the answer must be {"proposals": [{"changes": {...}, "hypothesis": "..."}, ...]}')
    usable: list[dict[str, Any]] = []
    dropped: list[str] = []
    seen: list[Config] = []
    for i, item in enumerate(items[:wanted]):
        try:
            if not isinstance(item, dict) or not isinstance(item.get("changes"), dict):
                raise ProposalRejected('each proposal must be {"changes": {...}, "hypothesis": "..."}')
            config, _, _ = apply_proposal(item, space, incumbent, frozen)
            if config in seen:
                raise ProposalRejected("repeats an earlier proposal of the batch")
        except ProposalRejected as exc:
            dropped.append(f"#{i + 1}: {exc}")
            continue
        seen.append(config)
        usable.append(item)
    if len(items) > wanted:
        dropped.append(f"{len(items) - wanted} proposals beyond the {wanted} asked for")
    if not usable:
        raise ProposalRejected("no usable proposal: " + "; ".join(dropped)[:400])
    return usable, dropped


def apply_proposal(data: dict[str, Any], space: Space, incumbent: Config,
                   frozen: set[str]) -> tuple[Config, str, list[str]]:
    """One proposal (``{"changes": {...}, "hypothesis": "..."}``) applied to ``incumbent``: the config,
    hypothesis and repairs; ProposalRejected says why it cannot be used."""
    unknown = sorted(set(data["changes"]) - set(space.names))
    if unknown:
        raise ProposalRejected(f"unknown parameters {unknown}; the space has {space.names}")
    hypothesis = data.get("hypothesis", "")
    if not isinstance(hypothesis, str):
        raise ProposalRejected("hypothesis must be a string")
    repairs: list[str] = []
    out = copy.deepcopy(incumbent)
    for name, value in data["changes"].items():
        if name in frozen:
            repairs.append(f"ignored a change to frozen {name}")
            continue
        out[name] = _repair_value(space, name, value, repairs)
    try:
        space.validate(out)
    except SpaceError as exc:
        raise ProposalRejected(str(exc)) from exc
    if out == incumbent:
        raise ProposalRejected("the proposal changes nothing; change at least one parameter")
    return {n: out[n] for n in space.names}, hypothesis.strip().splitlines()[0][:300] if hypothesis.strip() else "", repairs


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    return value


class LLMProposer(Proposer):
    """Proposes through a chat model (see the module doc); the fallback proposer covers failed answers.

    Before there is an incumbent (or for the first ``init_random`` trials)
    the fallback proposer draws a random start, as greedy does.
    """

    name = "llm"

    def __init__(self, space: Space, config: SearchConfig, seed: int, model: ModelRef, context: str = "",
                 retries: int = 2, caller: Caller | None = None) -> None:
        """Called once per inner run; ``context`` names the inner run in the call records (for replay)."""
        super().__init__(space, config, seed)
        self.model = model
        self.context = context
        self.retries = max(0, int(retries))
        self.caller = caller or Caller(model)
        fallback_config = config if config.strategy in (Strategy.GREEDY, Strategy.RANDOM) else config.replace(
            strategy=Strategy.GREEDY)
        self.fallback: Proposer = (RandomProposer if fallback_config.strategy is Strategy.RANDOM else GreedyProposer)(
            space, fallback_config, seed)
        self._outcomes: list[dict[str, Any]] = []
        self._history: list[Trial] = []
        self._last_source = self.source
        self.per_call = max(1, int(model.option("proposals_per_call", "1")))
        self._queue: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (proposal, the outcome of its call)

    @property
    def last_source(self) -> str:
        """The source of the latest proposal: ``base:llm`` or ``base:llm-fallback``."""
        return self._last_source

    def settings(self) -> dict[str, Any]:
        version = PROMPT_VERSION if self.per_call == 1 else BATCH_PROMPT_VERSION
        return {**super().settings(), "model": self.model.to_json(), "retries": self.retries,
                "proposals_per_call": self.per_call, "prompt": version, "prompt_hash": prompt_texts(version)[2]}

    def tell(self, trial: Trial) -> None:
        """Called once per finished trial; the history the next prompts show."""
        self._history.append(trial)
        self.fallback.tell(trial)

    def call_records(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._outcomes]

    def propose(self, trial_index: int, incumbent: Trial | None, guidance: dict[str, Any]) -> Config:
        """Called when no mechanism proposed; see :meth:`Proposer.propose`."""
        attempt = self._next_attempt(trial_index)
        if incumbent is None or trial_index < self.config.init_random:
            self._last_source = self.source + FALLBACK_SUFFIX
            return self.fallback.propose(trial_index, incumbent, guidance)
        frozen = self._frozen(guidance)
        while self._queue:  # the rest of the last batch, one proposal per trial, applied to today's incumbent
            item, of_call = self._queue.pop(0)
            try:
                config, _, _ = apply_proposal(item, self.space, incumbent.config, frozen)
            except ProposalRejected as exc:
                of_call.setdefault("skipped", []).append(f"t{trial_index}: {exc}"[:300])
                continue
            of_call["used"] = of_call.get("used", 0) + 1
            self._last_source = self.source
            return config
        if self.per_call > 1:
            return self._ask_batch(trial_index, attempt, incumbent, guidance, frozen)
        system, template, digest = prompt_texts()
        user = self._user_prompt(template, trial_index, incumbent, guidance)
        messages: list[tuple[str, str]] = [("user", user)]
        for retry in range(self.retries + 1):
            request = ChatRequest(system, tuple(messages), "inner",
                                  f"{self.context}:t{trial_index}:a{attempt}:r{retry}", f"{PROMPT_VERSION}@{digest}")
            record = self.caller.ask(request)
            if record.error:
                self._outcomes.append({**record.to_json(), "outcome": f"call failed: {record.error}"[:500]})
                continue
            try:
                config, hypothesis, repairs = parse_proposal(record.response, self.space, incumbent.config, frozen)
            except ProposalRejected as exc:
                self._outcomes.append({**record.to_json(), "outcome": f"rejected: {exc}"[:500]})
                messages += [("assistant", record.response), ("user", f"Rejected: {exc}. Answer again with one "
                                                                      "valid JSON object.")]
                continue
            outcome = "repaired: " + "; ".join(repairs) if repairs else "accepted"
            self._outcomes.append({**record.to_json(), "outcome": outcome[:500], "hypothesis": hypothesis})
            self._last_source = self.source
            return config
        self._last_source = self.source + FALLBACK_SUFFIX
        return self.fallback.propose(trial_index, incumbent, guidance)

    def prompt(self, trial_index: int, incumbent: Trial, guidance: dict[str, Any]) -> tuple[str, str]:
        """(system, first user message) of the call this proposer would make now, with its history so far;
        ``runs.estimate`` calls it before a run to measure the prompt's real size (nothing is asked)."""
        if self.per_call > 1:
            system, template, _ = prompt_texts(BATCH_PROMPT_VERSION)
            return system, self._user_prompt(template, trial_index, incumbent, guidance, n_proposals=self.per_call)
        system, template, _ = prompt_texts()
        return system, self._user_prompt(template, trial_index, incumbent, guidance)

    def _user_prompt(self, template: str, trial_index: int, incumbent: Trial, guidance: dict[str, Any],
                     **extra: Any) -> str:
        return template.format(space=json.dumps(self.space.to_json()["params"]), trial_index=trial_index,
                               incumbent=json.dumps({"config": _short(incumbent.config),
                                                     "score": _short(incumbent.score)}),
                               guidance=json.dumps(guidance, sort_keys=True),
                               history="\n".join(json.dumps({"i": t.index, "config": _short(t.config),
                                                             "score": _short(t.score), "kept": t.kept})
                                                 for t in self._history[-HISTORY_SHOWN:]) or "(none)", **extra)

    def _ask_batch(self, trial_index: int, attempt: int, incumbent: Trial, guidance: dict[str, Any],
                   frozen: set[str]) -> Config:
        """One call for ``per_call`` proposals: the first is proposed now, the rest queue for the next trials."""
        system, template, digest = prompt_texts(BATCH_PROMPT_VERSION)
        messages: list[tuple[str, str]] = [("user", self._user_prompt(template, trial_index, incumbent, guidance,
                                                                      n_proposals=self.per_call))]
        for retry in range(self.retries + 1):
            request = ChatRequest(system, tuple(messages), "inner", f"{self.context}:t{trial_index}:a{attempt}:r{retry}",
                                  f"{BATCH_PROMPT_VERSION}@{digest}")
            record = self.caller.ask(request)
            if record.error:
                self._outcomes.append({**record.to_json(), "outcome": f"call failed: {record.error}"[:500]})
                continue
            try:
                usable, dropped = parse_batch(record.response, self.space, incumbent.config, frozen, self.per_call)
            except ProposalRejected as exc:
                self._outcomes.append({**record.to_json(), "outcome": f"rejected: {exc}"[:500]})
                messages += [("assistant", record.response), ("user", f"Rejected: {exc}. Answer again with one "
                                                                      "valid JSON object.")]
                continue
            outcome = {**record.to_json(), "outcome": (f"accepted: {len(usable)} proposals"
                                                       + (f"; dropped {'; '.join(dropped)}" if dropped else ""))[:500],
                       "hypothesis": str(usable[0].get("hypothesis", ""))[:300], "used": 1}
            self._outcomes.append(outcome)
            self._queue = [(item, outcome) for item in usable[1:]]
            config, _, _ = apply_proposal(usable[0], self.space, incumbent.config, frozen)
            self._last_source = self.source
            return config
        self._last_source = self.source + FALLBACK_SUFFIX
        return self.fallback.propose(trial_index, incumbent, guidance)
