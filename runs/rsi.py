"""Recursive-self-improvement metrics of a run, for ``show``, ``compare`` and ``report``.

- gain per generation (the validation improvement each kept stack won over
  the incumbent it replaced; 0 for a generation that kept nothing) and
  whether it accelerates: only with at least 3 generations, by a one-sided
  permutation test of the least-squares slope of the gains over generations
  (``slope_test``: p = the share of orderings of the gains whose slope is at
  least the observed one; "yes" when p <= 0.05), otherwise ``n/a``;
- acceptance rate (candidates the judge passed / candidates judged);
- activation rate of kept mechanisms (share of proposals the new mechanisms
  of each adopted stack changed, from its verdict);
- diversity of the mechanism population (the distinct mechanisms in any
  judged stack, and the mean pairwise dissimilarity of their sources);
- transfer to the sealed test panel (test improvement / validation
  improvement of the final stack, from the run's summary) and, when
  measured, to another benchmark (:mod:`runs.replay_stack`);
- gain per token (test improvement per 1000 LLM tokens; n/a offline).
"""

from __future__ import annotations

import difflib
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bilevel.runs.history import RunHistory, load_history
from bilevel.runs.ledger import ledger
from bilevel.runs.store import Store
from bilevel.runs.views import last_summary

MAX_DIVERSITY_SOURCES = 24
MIN_GENERATIONS = 3  # fewer gains cannot show acceleration
ACCELERATION_ALPHA = 0.05
_EXACT_UP_TO = 8  # generations whose orderings are all enumerated (8! = 40320); more: 20000 seeded draws


def _slope(values: np.ndarray) -> float:
    x = np.arange(values.shape[-1], dtype=float)
    x -= x.mean()
    return (values @ x) / float(x @ x)  # type: ignore[no-any-return]


def slope_test(gains: tuple[float, ...] | list[float]) -> float:
    """The one-sided permutation p-value of "the gains grow over generations": the share of
    orderings of the gains whose least-squares slope is at least the observed slope (exact up to
    8 generations, else 20000 seeded random orderings). 1.0 when all gains are equal."""
    g = np.asarray(gains, dtype=float)
    if g.size < 2 or np.all(g == g[0]):
        return 1.0
    observed = _slope(g)
    if g.size <= _EXACT_UP_TO:
        orders = np.array(list(itertools.permutations(range(g.size))))
    else:
        rng = np.random.default_rng(0)
        orders = np.argsort(rng.random((20_000, g.size)), axis=1)
    slopes = _slope(g[orders])
    return float(np.mean(slopes >= observed - 1e-12))


@dataclass(frozen=True)
class RsiMetrics:
    """The metrics of one run; computed from the record only (no evaluation)."""

    gains: tuple[float, ...]
    slope: float
    acceptance: float
    activation: float
    distinct_mechanisms: int
    diversity: float
    val_improvement: float
    test_improvement: float
    transfer_test: float
    tokens: int
    dollars: float
    trials: int

    @property
    def accelerating(self) -> str:
        if len(self.gains) < MIN_GENERATIONS:
            return f"n/a (fewer than {MIN_GENERATIONS} generations)"
        p = slope_test(self.gains)
        word = "yes" if p <= ACCELERATION_ALPHA and self.slope > 0 else "no"
        return (f"{word}; one-sided permutation test of the slope over {len(self.gains)} generations, "
                f"p = {p:.3g} (yes needs p <= {ACCELERATION_ALPHA:g})")

    @property
    def gain_per_ktoken(self) -> str:
        if self.tokens <= 0:
            return "n/a (no LLM tokens: offline author)"
        return f"{1000.0 * self.test_improvement / self.tokens:+.6f}"

    def lines(self) -> list[str]:
        """``key: value`` lines (the ``rsi_`` prefix keeps them grep-able next to the summary)."""
        gains = " ".join(f"{g:+.4f}" for g in self.gains) or "-"
        return [
            f"rsi_gain_per_generation: {gains}",
            f"rsi_gain_slope: {self.slope:+.5f} (accelerating: {self.accelerating})",
            f"rsi_acceptance_rate: {self.acceptance:.3f}",
            f"rsi_activation_rate: {self.activation:.3f}",
            f"rsi_diversity: {self.diversity:.3f} ({self.distinct_mechanisms} distinct mechanisms)",
            f"rsi_transfer_test: {_fmt(self.transfer_test)} (test {self.test_improvement:+.4f} / "
            f"validation {self.val_improvement:+.4f})",
            f"rsi_gain_per_ktoken: {self.gain_per_ktoken}",
            f"rsi_gain_per_ktrial: {_fmt(1000.0 * self.test_improvement / self.trials if self.trials else math.nan)}",
        ]

    def to_json(self) -> dict[str, Any]:
        return {"gains": list(self.gains), "slope": self.slope, "accelerating": self.accelerating,
                "acceptance": self.acceptance, "activation": self.activation,
                "distinct_mechanisms": self.distinct_mechanisms, "diversity": self.diversity,
                "transfer_test": self.transfer_test, "tokens": self.tokens, "dollars": self.dollars,
                "trials": self.trials}


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.4f}"


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def gains_per_generation(history: RunHistory) -> list[float]:
    """The validation improvement of each generation's kept candidate over the incumbent it replaced."""
    out = []
    for g in history.generations:
        kept = [v for v in history.verdicts if v["generation"] == g.index and v["keep"]
                and v["stack_key"] == g.incumbent.key]
        out.append(float(kept[0]["mean_improvement"]) if kept and g.kept is not None else 0.0)
    return out


def diversity(sources: list[str]) -> float:
    """Mean pairwise dissimilarity (1 - difflib ratio) of mechanism sources; 0 for fewer than two."""
    sources = sources[:MAX_DIVERSITY_SOURCES]
    pairs = list(itertools.combinations(sources, 2))
    if not pairs:
        return 0.0
    return float(np.mean([1.0 - difflib.SequenceMatcher(None, a, b, autojunk=False).quick_ratio()
                          for a, b in pairs]))


def rsi_metrics(store: Store, run_id: str, history: RunHistory | None = None) -> RsiMetrics:
    """Compute the metrics from the run's record (called once per view)."""
    history = history or load_history(store, run_id)
    gains = gains_per_generation(history)
    slope = float(np.polyfit(np.arange(len(gains)), gains, 1)[0]) if len(gains) >= 2 else 0.0
    judged = [v for v in history.verdicts]
    kept = [v for v in judged if v["keep"]]
    acceptance = len(kept) / len(judged) if judged else 0.0
    incumbents = {g.incumbent.key for g in history.generations if g.kept is not None}
    adopted = [v for v in kept if v["stack_key"] in incumbents and v.get("n_pairs", 0) > 0]
    activation = float(np.mean([v["changed_share"] for v in adopted])) if adopted else 0.0
    used = {m["id"] for c in history.candidates for m in c["stack"]["mechanisms"]}
    population = [m for m in store.mechanisms(run_id) if m["id"] in used]
    sources = [store.source(m["source_hash"]) for m in population]
    summary = last_summary(store, run_id) or {}
    val = _float(summary.get("val_improvement"))
    test = _float(summary.get("test_improvement"))
    transfer = test / val if val and not math.isnan(val) and abs(val) > 1e-12 else math.nan
    led = ledger(store, run_id)
    return RsiMetrics(tuple(gains), slope, acceptance, activation, len({m["source_hash"] for m in population}),
                      diversity(sources), val, test, transfer, led.tokens, led.dollars, led.trials)
