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

``numpy`` is wrapped as well: every function refuses datetime64/timedelta64
dtypes (``"M8[s]"``, ``"datetime64"``, ``np.array("now", dtype="M8[s]")``,
structured dtypes with such a field), whether named in its arguments or found in
its result, because parsing ``"now"`` or ``"today"`` reads the clock and a
mechanism must be a function of its history and seed. The business-day and
datetime-formatting functions are not in the facade at all.

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
from bilevel.sandbox.policy import Namespace, refuse

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


#: Where a facade function takes its dtype positionally (``np.zeros(3, "M8[s]")``); every one also takes ``dtype=``.
DTYPE_POSITIONS: dict[str, int] = {
    "array": 1, "asarray": 1, "zeros": 1, "ones": 1, "full": 2, "zeros_like": 1, "ones_like": 1, "arange": 3,
    "linspace": 5, "mean": 2, "sum": 2, "prod": 2, "std": 2, "var": 2, "cumsum": 2, "nanmean": 2,
}
#: Keyword arguments that name dtypes (``signature`` selects ufunc loops, e.g. ``"MM->M"``).
DTYPE_KEYWORDS = ("dtype", "signature")
TIME_REFUSAL = ("numpy datetime64/timedelta64 dtypes are not allowed in the sandbox "
                "(parsing 'now' or 'today' reads the clock); use plain numbers")


def _pick(module: Any, names: Iterable[str]) -> dict[str, Any]:
    return {n: getattr(module, n) for n in names}


def _dtype_has_time(dt: np.dtype[Any]) -> bool:
    """Whether ``dt`` is, or contains (as a field or a subarray), a datetime64/timedelta64 dtype."""
    if dt.kind in "Mm":
        return True
    if dt.subdtype is not None and _dtype_has_time(dt.subdtype[0]):
        return True
    return any(_dtype_has_time(field[0]) for field in (dt.fields or {}).values())


def _names_time(spec: Any) -> bool:
    """Whether a dtype argument (a string, a type, a dtype, a structured spec, a ufunc signature) names time."""
    if spec is None or isinstance(spec, bool | int | float):
        return False
    if isinstance(spec, str):
        low = spec.lower()
        if "datetime" in low or "timedelta" in low or ("->" in spec and ("M" in spec or "m" in spec)):
            return True
    if isinstance(spec, type) and issubclass(spec, np.datetime64 | np.timedelta64):
        return True
    try:
        if _dtype_has_time(np.dtype(spec)):
            return True
    except Exception:  # not a dtype at all: numpy itself says what is wrong with it
        pass
    if isinstance(spec, list | tuple):  # a signature tuple such as ("M8[s]", "M8[s]", None)
        return any(_names_time(item) for item in spec[:64])
    return False


def _holds_time(value: Any) -> bool:
    """Whether a result (an array, a scalar, or a tuple of them) has a datetime/timedelta dtype."""
    if isinstance(value, np.ndarray | np.generic):
        return _dtype_has_time(value.dtype)
    if isinstance(value, tuple):
        return any(_holds_time(v) for v in value)
    return False


def _without_time(name: str, fn: Any) -> Any:
    """``fn`` refusing datetime64/timedelta64 dtypes in its arguments and its results (PolicyViolation)."""
    position = DTYPE_POSITIONS.get(name)

    def call(*args: Any, **kwargs: Any) -> Any:
        specs = [kwargs.get(k) for k in DTYPE_KEYWORDS]
        if position is not None and len(args) > position:
            specs.append(args[position])
        if any(_names_time(spec) for spec in specs) or any(_holds_time(a) for a in args):
            refuse(f"np.{name}: {TIME_REFUSAL}")
        result = fn(*args, **kwargs)
        if _holds_time(result):
            refuse(f"np.{name}: {TIME_REFUSAL}")
        return result

    return call


def _numpy_facade() -> Namespace:
    members = {n: _without_time(n, v) if callable(v) else v for n, v in _pick(np, NUMPY_NAMES).items()}
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
