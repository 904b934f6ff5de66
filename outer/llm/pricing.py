"""Prices in US dollars per million tokens (in, out), by model-spec prefix; a run's spec may override them.

The table is a convenience, not a promise: check your provider's price list
and put the current figures in the spec (``[llm] prices``). Local backends
(ollama, mlx, scripted, replay) cost nothing.
"""

from __future__ import annotations

from typing import Any

from bilevel.inner.chat import ChatConfigError

PRICES: dict[str, tuple[float, float]] = {
    "anthropic:claude-opus": (15.0, 75.0),
    "anthropic:claude-sonnet": (3.0, 15.0),
    "anthropic:claude-haiku": (1.0, 5.0),
    "anthropic:": (3.0, 15.0),  # an unknown Claude model is priced like Sonnet; override in the spec
    "ollama:": (0.0, 0.0),
    "mlx:": (0.0, 0.0),
    "scripted:": (0.0, 0.0),
    "replay:": (0.0, 0.0),
}


def _pair(prefix: str, value: Any) -> tuple[float, float]:
    ok = (isinstance(value, list | tuple) and len(value) == 2
          and all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in value))
    if not ok:
        raise ChatConfigError(f"[llm] prices: {prefix!r} must be [dollars per Mtok in, dollars per Mtok out], "
                              f"got {value!r}")
    return float(value[0]), float(value[1])


def price_for(spec: str, overrides: dict[str, Any]) -> tuple[float, float]:
    """The price of ``spec``: the longest matching prefix of the overrides, else of the table."""
    for table in ({k: _pair(k, v) for k, v in overrides.items()}, PRICES):
        matches = [k for k in table if spec.startswith(k)]
        if matches:
            return table[max(matches, key=len)]
    return (0.0, 0.0)
