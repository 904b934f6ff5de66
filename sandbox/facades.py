"""The modules a mechanism may import, as frozen facades (``sandbox.policy.Namespace``).

A facade exposes only allow-listed members and nothing else: no ``__name__``,
``__dict__`` or ``__file__``, no way back to the real module, and its
attributes cannot be set. The real functions inside are plain callables; the
attribute guard refuses every attribute of a function, so ``np.mean.__globals__``
and friends are out of reach.

``random`` is special: each mechanism gets a facade over its own
``random.Random`` instance, which the worker re-seeds before every call
(see ``sandbox.worker``), so a mechanism's randomness is a function of the
run's seed, its position, the hook and the trial index.

Called by the worker (:func:`build_modules`) each time it loads a mechanism.
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
import random
import statistics
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.linalg

from bilevel.mechanisms import spacekit
from bilevel.sandbox.policy import Namespace

MATH_NAMES: tuple[str, ...] = tuple(n for n in dir(math) if not n.startswith("_"))
ITERTOOLS_NAMES: tuple[str, ...] = tuple(n for n in dir(itertools) if not n.startswith("_"))
STATISTICS_NAMES = (
    "mean", "median", "stdev", "pstdev", "variance", "pvariance", "quantiles", "fmean",
    "median_low", "median_high", "StatisticsError",
)
FUNCTOOLS_NAMES = ("reduce", "partial", "cmp_to_key")
COLLECTIONS_NAMES = ("deque", "Counter", "defaultdict", "OrderedDict")
RANDOM_NAMES = (
    "random", "uniform", "gauss", "normalvariate", "lognormvariate", "expovariate", "triangular",
    "betavariate", "randint", "randrange", "choice", "choices", "sample", "shuffle",
)
NUMPY_NAMES = (
    "array", "asarray", "zeros", "ones", "full", "zeros_like", "ones_like", "arange", "linspace",
    "mean", "median", "std", "var", "sum", "prod", "min", "max", "argmin", "argmax", "argsort", "sort",
    "clip", "sqrt", "square", "exp", "log", "log10", "abs", "dot", "cumsum", "diff", "percentile",
    "quantile", "where", "isfinite", "isnan", "concatenate", "stack", "maximum", "minimum", "round",
    "floor", "ceil", "unique", "any", "all", "nanmean", "nanmin", "nanmax", "inf", "nan", "pi", "e",
)
LINALG_NAMES = ("norm", "solve", "inv", "det", "lstsq", "cholesky", "eigh", "LinAlgError")
SPACEKIT_NAMES = (
    "params", "names", "coord_names", "coord_owner", "dims", "normalise", "encode", "decode",
    "repair", "distance", "key",
)


def _pick(module: Any, names: Iterable[str]) -> dict[str, Any]:
    return {n: getattr(module, n) for n in names}


def _numpy_facade() -> Namespace:
    members = _pick(np, NUMPY_NAMES)
    members["linalg"] = LINALG
    return Namespace("numpy", members)


MATH = Namespace("math", _pick(math, MATH_NAMES))
ITERTOOLS = Namespace("itertools", _pick(itertools, ITERTOOLS_NAMES))
STATISTICS = Namespace("statistics", _pick(statistics, STATISTICS_NAMES))
FUNCTOOLS = Namespace("functools", _pick(functools, FUNCTOOLS_NAMES))
COLLECTIONS = Namespace("collections", _pick(collections, COLLECTIONS_NAMES))
LINALG = Namespace("numpy.linalg", _pick(numpy.linalg, LINALG_NAMES))
NUMPY = _numpy_facade()
SPACEKIT = Namespace("spacekit", _pick(spacekit, SPACEKIT_NAMES))


def random_facade(rng: random.Random) -> Namespace:
    """A ``random`` facade whose functions are the methods of ``rng`` (no seed or state access)."""
    return Namespace("random", _pick(rng, RANDOM_NAMES))


def build_modules(rng: random.Random) -> dict[str, Namespace]:
    """The importable modules of one mechanism, keyed by import name."""
    return {
        "math": MATH,
        "random": random_facade(rng),
        "statistics": STATISTICS,
        "itertools": ITERTOOLS,
        "functools": FUNCTOOLS,
        "collections": COLLECTIONS,
        "numpy": NUMPY,
        "numpy.linalg": LINALG,
        "spacekit": SPACEKIT,
    }
