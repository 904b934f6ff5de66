"""An interpolated byte n-gram language model with absolute discounting (numpy, no torch).

For orders k = 1..order (k bytes of context for k-1, i.e. an order-``order``
model uses ``order - 1`` bytes of history), the probability of the next byte
``c`` after history ``h`` is

    P_k(c | h) = (1 - lam) * [ max(C(h, c) - D, 0) / C(h) + D * N1(h) / C(h) * P_{k-1}(c | h') ]
                 + lam * P_{k-1}(c | h')            (when C(h) > 0; else P_{k-1}(c | h'))

with ``P_0`` uniform over 256 bytes, ``D`` the discount, ``lam`` the
interpolation weight and N1(h) the number of distinct bytes seen after ``h``.
Only the probability of the byte that actually follows is computed, so
evaluation is one vectorised pass per order. Counts never cross the
document boundaries given by ``doc_len``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_ORDER = 6


def _keys(data: np.ndarray, k: int, doc_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions with k-1 bytes of history in their document, context keys, (context, next) keys)."""
    n = len(data)
    pos = np.arange(n)
    ok = (pos % doc_len) >= k - 1
    idx = pos[ok]
    ctx = np.zeros(len(idx), dtype=np.int64)
    for j in range(k - 1, 0, -1):
        ctx = (ctx << 8) | data[idx - j].astype(np.int64)
    full = (ctx << 8) | data[idx].astype(np.int64)
    return idx, ctx, full


@dataclass(frozen=True)
class NGramModel:
    """Counts per order, as sorted unique keys with their counts. Built by :func:`train_ngram`."""

    order: int
    discount: float
    interpolation: float
    doc_len: int
    tables: tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]

    def bits_per_byte(self, data: np.ndarray) -> float:
        """The model's code length on ``data`` in bits per byte."""
        n = len(data)
        prob = np.full(n, 1.0 / 256.0)
        for k in range(1, self.order + 1):
            ctx_keys, ctx_counts, ctx_types, full_keys, full_counts = self.tables[k - 1]
            idx, ctx, full = _keys(data, k, self.doc_len)
            lower = prob[idx]
            c_h = _lookup(ctx_keys, ctx_counts, ctx)
            n1 = _lookup(ctx_keys, ctx_types, ctx)
            c_hc = _lookup(full_keys, full_counts, full)
            seen = c_h > 0
            denom = np.where(seen, c_h, 1.0)
            ad = np.maximum(c_hc - self.discount, 0.0) / denom + self.discount * n1 / denom * lower
            mixed = (1.0 - self.interpolation) * ad + self.interpolation * lower
            prob[idx] = np.where(seen, mixed, lower)
        return float(-np.log2(np.maximum(prob, 1e-300)).sum() / n)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    if len(keys) == 0:
        return np.zeros(len(query))
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[at] == query, values[at], 0).astype(float)


def train_ngram(data: np.ndarray, order: int, discount: float, interpolation: float, doc_len: int) -> NGramModel:
    """Count ``data`` (uint8) for orders 1..``order``; ValueError on out-of-range hyperparameters."""
    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"order must be in 1..{MAX_ORDER}, got {order}")
    if not (0.0 < discount < 1.0 and 0.0 <= interpolation < 1.0) or not math.isfinite(discount + interpolation):
        raise ValueError(f"need 0 < discount < 1 and 0 <= interpolation < 1, got {discount}, {interpolation}")
    tables = []
    for k in range(1, order + 1):
        _, ctx, full = _keys(data, k, doc_len)
        full_keys, full_counts = np.unique(full, return_counts=True)
        ctx_keys, ctx_counts = np.unique(ctx, return_counts=True)
        # distinct followers per context: the contexts of the distinct (context, next) keys
        types_keys, types = np.unique(full_keys >> 8, return_counts=True)
        ctx_types = _lookup(types_keys, types, ctx_keys)
        tables.append((ctx_keys, ctx_counts.astype(float), ctx_types, full_keys, full_counts.astype(float)))
    return NGramModel(order, float(discount), float(interpolation), doc_len, tuple(tables))
