"""Synthetic text domains with a known entropy rate, for ``datamix-lm``.

Every domain is a Markov source over bytes. A family of domains is built
around one *target* source (an order-2 chain over a 32-symbol alphabet) so
that each domain plays a known role:

- ``easy``: an order-1 chain with peaked rows, unrelated to the target (low entropy);
- ``hard``: an order-3 chain with flat-ish rows, unrelated to the target (high order);
- ``near_a`` / ``near_b``: a related pair, each 65% target and 35% its own random chain
  (they transfer, and each corrects the other's bias);
- ``noise``: independent uniform bytes over all 256 values (8 bits per byte, useless);
- ``scarce``: 90% target, 10% random, but only ``SCARCE_BYTES`` exist: asking for more
  repeats the same text, so over-weighting it overfits.

The target differs from every source, so the best mixture is not simply the
target's proportions. Text is drawn as many parallel documents (vectorised
over documents), so a megabyte takes tens of milliseconds.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz .,;:!", dtype=np.uint8)
K = len(ALPHABET)  # 32
DOC_LEN = 512
SCARCE_BYTES = 12 * 512
DOMAINS = ("easy", "hard", "near_a", "near_b", "noise", "scarce")


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class MarkovSource:
    """An order-``order`` chain over ``ALPHABET``: ``probs`` has shape (K,)*order + (K,).
    ``order == 0`` with ``probs is None`` means uniform bytes over 0..255."""

    name: str
    order: int
    probs: np.ndarray | None

    def sample(self, n_bytes: int, rng: np.random.Generator) -> np.ndarray:
        """``n_bytes`` bytes as uint8, drawn as documents of DOC_LEN started from random contexts."""
        if self.probs is None:
            return rng.integers(0, 256, size=n_bytes, dtype=np.uint8)
        n_docs = max(1, math.ceil(n_bytes / DOC_LEN))
        cdf = np.cumsum(self.probs.reshape(-1, K), axis=1)
        cdf[:, -1] = 1.0
        state = rng.integers(0, K ** self.order, size=n_docs) if self.order else np.zeros(n_docs, dtype=np.int64)
        out = np.empty((n_docs, DOC_LEN), dtype=np.int64)
        u = rng.random((DOC_LEN, n_docs))
        mod = K ** max(self.order - 1, 0)
        for t in range(DOC_LEN):
            rows = cdf[state]
            sym = (rows < u[t][:, None]).sum(axis=1)
            np.minimum(sym, K - 1, out=sym)
            out[:, t] = sym
            state = (state % mod) * K + sym if self.order else state
        return ALPHABET[out.reshape(-1)[:n_bytes]]

    def codelength_bits(self, data: np.ndarray) -> float:
        """The exact Bayes code length (bits) of ``data`` under this source, conditioning each byte on
        the previous ``order`` bytes of the same document; the first ``order`` bytes of each document
        (whose context was not emitted) are charged log2(K) each, as a uniform guess."""
        if self.probs is None:
            return 8.0 * len(data)
        index = np.full(256, -1, dtype=np.int64)
        index[ALPHABET] = np.arange(K)
        sym = index[data]
        if (sym < 0).any():
            raise ValueError(f"data has bytes outside the {self.name} alphabet")
        n = len(sym)
        pos = np.arange(n) % DOC_LEN
        bits = np.full(n, math.log2(K))
        ok = pos >= self.order
        idx = np.nonzero(ok)[0]
        ctx = np.zeros(len(idx), dtype=np.int64)
        for j in range(self.order, 0, -1):
            ctx = ctx * K + sym[idx - j]
        flat = self.probs.reshape(-1, K)
        bits[idx] = -np.log2(flat[ctx, sym[idx]])
        return float(bits.sum())

    def entropy_rate(self) -> float:
        """Bits per byte of the stationary chain (power iteration over contexts)."""
        if self.probs is None:
            return 8.0
        flat = self.probs.reshape(-1, K)
        row_h = -(flat * np.log2(flat)).sum(axis=1)
        if self.order == 0:
            return float(row_h[0])
        n_ctx = K ** self.order
        pi = np.full(n_ctx, 1.0 / n_ctx)
        mod = K ** (self.order - 1)
        dest = (np.arange(n_ctx)[:, None] % mod) * K + np.arange(K)[None, :]
        for _ in range(500):
            new = np.bincount(dest.reshape(-1), weights=(pi[:, None] * flat).reshape(-1), minlength=n_ctx)
            if np.abs(new - pi).sum() < 1e-12:
                pi = new
                break
            pi = new
        return float((pi * row_h).sum())


def _dirichlet_rows(rng: np.random.Generator, order: int, alpha: float) -> np.ndarray:
    probs = rng.dirichlet(np.full(K, alpha), size=K ** order)
    probs = np.maximum(probs, 1e-6)  # every byte of the alphabet possible: code lengths stay finite
    return (probs / probs.sum(axis=1, keepdims=True)).reshape((K,) * order + (K,))


@dataclass(frozen=True)
class DomainFamily:
    """A target source and the six training domains built around it."""

    target: MarkovSource
    domains: dict[str, MarkovSource]

    def supply(self, domain: str) -> int | None:
        """How many distinct bytes ``domain`` has (None: unlimited)."""
        return SCARCE_BYTES if domain == "scarce" else None


@lru_cache(maxsize=64)
def family(variant: int, sharpness: float) -> DomainFamily:
    """The domain family of one target variant (deterministic in its arguments; cached per process).
    ``sharpness`` is the Dirichlet concentration of the target's rows (smaller: lower entropy)."""
    rng = _rng("datamix-family", variant, sharpness)
    target = _dirichlet_rows(rng, 2, sharpness)

    def blend(share: float, tag: str) -> np.ndarray:
        own = _dirichlet_rows(_rng("datamix-own", variant, sharpness, tag), 2, 0.3)
        return share * target + (1 - share) * own

    domains = {
        "easy": MarkovSource("easy", 1, _dirichlet_rows(rng, 1, 0.05)),
        "hard": MarkovSource("hard", 3, _dirichlet_rows(rng, 3, 0.5)),
        "near_a": MarkovSource("near_a", 2, blend(0.65, "a")),
        "near_b": MarkovSource("near_b", 2, blend(0.65, "b")),
        "noise": MarkovSource("noise", 0, None),
        "scarce": MarkovSource("scarce", 2, blend(0.9, "s")),
    }
    return DomainFamily(MarkovSource("target", 2, target), domains)


@lru_cache(maxsize=256)
def corpus(variant: int, sharpness: float, domain: str, n_bytes: int, seed: int) -> np.ndarray:
    """``n_bytes`` of ``domain`` text for one data seed (a scarce domain repeats its supply)."""
    fam = family(variant, sharpness)
    source = fam.domains[domain]
    cap = fam.supply(domain)
    if cap is None:
        return source.sample(n_bytes, _rng("datamix-corpus", variant, sharpness, domain, seed))
    base = source.sample(cap, _rng("datamix-scarce", variant, sharpness))  # the same few bytes for every seed
    reps = math.ceil(n_bytes / cap)
    return np.tile(base, reps)[:n_bytes]


@lru_cache(maxsize=64)
def validation(variant: int, sharpness: float, n_bytes: int) -> tuple[np.ndarray, float]:
    """The fixed target validation text of a variant and its exact Bayes code length in bits per byte."""
    fam = family(variant, sharpness)
    data = fam.target.sample(n_bytes, _rng("datamix-validation", variant, sharpness))
    return data, fam.target.codelength_bits(data) / len(data)
