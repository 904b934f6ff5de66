"""The cost ledger of a run: inner trials run, and LLM tokens and money per level.

LLM call records are written by the model clients (when a run uses a model);
an offline run has none, and its ledger shows zero tokens and zero money.
The ledger reads the store's per-level sums (``Store.ledger``) where it has
them, else its ``llm_calls`` records, each with a level and token/cost fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bilevel.runs.store import Store

_TOKEN_KEYS = ("tokens", "total_tokens")
_IN_OUT_KEYS = (("input_tokens", "output_tokens"), ("prompt_tokens", "completion_tokens"))
_COST_KEYS = ("cost", "cost_usd", "dollars", "usd")


@dataclass(frozen=True)
class Ledger:
    """What a run spent. ``levels`` maps a level name (``inner``, ``author``) to (calls, tokens, dollars).

    Tokens are every token the model handled: input, output, and prompt-cache writes and reads
    (priced apart in the dollars: see ``inner.chat.ModelRef.cost``).
    """

    trials: int
    inner_runs: int
    levels: dict[str, tuple[int, int, float]] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return sum(v[1] for v in self.levels.values())

    @property
    def dollars(self) -> float:
        return sum(v[2] for v in self.levels.values())

    def rows(self) -> list[tuple[str, int, int, float]]:
        """(level, calls, tokens, dollars) per level, then a total row."""
        out = [(k, *v) for k, v in sorted(self.levels.items())]
        out.append(("total", sum(v[0] for v in self.levels.values()), self.tokens, self.dollars))
        return out


def _tokens(call: dict[str, Any]) -> int:
    for k in _TOKEN_KEYS:
        if isinstance(call.get(k), int | float):
            return int(call[k])
    for a, b in _IN_OUT_KEYS:
        if a in call or b in call:
            return int(call.get(a) or 0) + int(call.get(b) or 0)
    return 0


def _cost(call: dict[str, Any]) -> float:
    for k in _COST_KEYS:
        if isinstance(call.get(k), int | float):
            return float(call[k])
    return 0.0


def llm_calls(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The run's LLM call records as dicts (empty for an offline run or a store without them)."""
    method = getattr(store, "llm_calls", None)
    if callable(method):
        return [dict(c) for c in method(run_id)]
    has = store.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='llm_calls'").fetchone()
    if not has:
        return []
    cur = store.db.execute("SELECT * FROM llm_calls WHERE run_id = ?", (run_id,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


def ledger(store: Store, run_id: str) -> Ledger:
    """Sum the run's costs (called by compare, report and the RSI metrics)."""
    trials = runs = 0
    for ev in store.evaluations(run_id):
        runs += 1
        trials += int(ev["result"].get("n_trials", 0))
    levels: dict[str, tuple[int, int, float]] = {}
    summed = getattr(store, "ledger", None)
    if callable(summed):  # the store sums its llm_calls table per level
        for level, v in summed(run_id).items():
            tokens = sum(int(v.get(k, 0)) for k in ("tokens_in", "tokens_out", "cache_write", "cache_read"))
            levels[str(level)] = (int(v.get("calls", 0)), tokens, float(v.get("cost_usd", 0.0)))
        return Ledger(trials, runs, levels)
    for call in llm_calls(store, run_id):
        level = str(call.get("level") or call.get("role") or "llm")
        n, t, d = levels.get(level, (0, 0, 0.0))
        levels[level] = (n + 1, t + _tokens(call), d + _cost(call))
    return Ledger(trials, runs, levels)
