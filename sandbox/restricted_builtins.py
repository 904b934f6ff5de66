"""Layer 1's builtins and globals: what a mechanism's module namespace holds.

:func:`restricted_globals` builds fresh globals for one mechanism (called by
the worker each time it loads one): the allow-listed builtins, wrapped so
they iterate through the guards of ``sandbox.guards``, an ``__import__`` that
hands out the facades of ``sandbox.facades``, and RestrictedPython's hooks.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from RestrictedPython import safe_builtins
from RestrictedPython.Guards import guarded_unpack_sequence

from bilevel.sandbox.guards import (
    Namespace,
    PrintCollector,
    SafeBuiltin,
    guarded_apply,
    guarded_getattr,
    guarded_getitem,
    guarded_inplacevar,
    guarded_iter,
    guarded_write,
    refuse,
)

#: Module names a mechanism may import (``numpy.linalg`` comes with ``numpy``).
ALLOWED_MODULES: tuple[str, ...] = (
    "math", "random", "statistics", "itertools", "functools", "collections", "numpy", "spacekit",
)


# --------------------------------------------------------------------------- unpacking
def guarded_iter_unpack_sequence(it: Any, spec: Mapping[str, Any], _getiter_: Any) -> Iterator[Any]:
    """``_iter_unpack_sequence_`` (``for a, b in it``): RestrictedPython's, with the common case made cheap.

    RestrictedPython's passes ``it`` and each item through ``_getiter_`` and makes each item a list
    (``guarded_unpack_sequence``). Where the target has no nested unpacking and ``_getiter_`` is
    :func:`guarded_iter` (always, in mechanism globals), an item that is exactly a tuple or a list is
    copied into a list directly: ``guarded_iter`` allows both and returns their plain iterator, so the
    result is the same list, and any other item still goes through the guard."""
    if spec["childs"] or _getiter_ is not guarded_iter:
        for ob in _getiter_(it):
            yield guarded_unpack_sequence(ob, spec, _getiter_)
        return
    for ob in guarded_iter(it):
        kind = type(ob)
        yield list(ob) if kind is tuple or kind is list else list(guarded_iter(ob))


# --------------------------------------------------------------------------- builtins
def _wrapped_sorted(iterable: Any, /, *, key: Any = None, reverse: bool = False) -> list[Any]:
    return sorted(guarded_iter(iterable), key=key, reverse=reverse)


def _wrapped_zip(*iterables: Any, strict: bool = False) -> Iterator[tuple[Any, ...]]:
    return zip(*[guarded_iter(i) for i in iterables], strict=strict)


def _wrapped_min(*args: Any, **kwargs: Any) -> Any:
    if len(args) == 1:
        return min(guarded_iter(args[0]), **kwargs)
    return min(*args, **kwargs)


def _wrapped_max(*args: Any, **kwargs: Any) -> Any:
    if len(args) == 1:
        return max(guarded_iter(args[0]), **kwargs)
    return max(*args, **kwargs)


def _wrapped_sum(iterable: Any, /, start: Any = 0) -> Any:
    return sum(guarded_iter(iterable), start)


def _wrapped_enumerate(iterable: Any, start: int = 0) -> Iterator[tuple[int, Any]]:
    return enumerate(guarded_iter(iterable), start)


def _wrapped_any(iterable: Any, /) -> bool:
    return any(guarded_iter(iterable))


def _wrapped_all(iterable: Any, /) -> bool:
    return all(guarded_iter(iterable))


def _wrapped_map(fn: Any, *iterables: Any) -> Iterator[Any]:
    return map(fn, *[guarded_iter(i) for i in iterables])


def _wrapped_filter(fn: Any, iterable: Any, /) -> Iterator[Any]:
    return filter(fn, guarded_iter(iterable))


def _wrapped_reversed(seq: Any, /) -> Iterator[Any]:
    if isinstance(seq, (list, tuple, str, range, dict, collections.deque, np.ndarray)):
        return reversed(seq)
    return reversed(list(guarded_iter(seq)))


def _wrapped_iter(obj: Any, *sentinel: Any) -> Iterator[Any]:
    if sentinel:
        return iter(obj, *sentinel)
    return guarded_iter(obj)


def _container(real: type) -> Callable[..., Any]:
    def make(iterable: Iterable[Any] = (), /) -> Any:
        return real(guarded_iter(iterable))

    return make


def _wrapped_dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    if not args:
        return dict(**kwargs)
    if len(args) > 1:
        raise TypeError(f"dict expected at most 1 argument, got {len(args)}")
    source = args[0]
    if isinstance(source, dict):
        return dict(source, **kwargs)
    return dict(guarded_iter(source), **kwargs)


def _unwrap_classinfo(classinfo: Any) -> Any:
    if type(classinfo) is SafeBuiltin:
        return object.__getattribute__(classinfo, "_sb_real")
    if isinstance(classinfo, tuple):
        return tuple(_unwrap_classinfo(c) for c in classinfo)
    return classinfo


def _wrapped_isinstance(obj: Any, classinfo: Any, /) -> bool:
    return isinstance(obj, _unwrap_classinfo(classinfo))


def _wrapped_issubclass(cls: Any, classinfo: Any, /) -> bool:
    return issubclass(_unwrap_classinfo(cls), _unwrap_classinfo(classinfo))


_REMOVED_BUILTINS = ("__build_class__", "id", "setattr", "delattr", "KeyboardInterrupt", "SystemExit")


def _base_builtins() -> dict[str, Any]:
    out = {k: v for k, v in safe_builtins.items() if k not in _REMOVED_BUILTINS and not k.startswith("_")}
    out.update({
        "list": SafeBuiltin(list, _container(list)),
        "tuple": SafeBuiltin(tuple, _container(tuple)),
        "set": SafeBuiltin(set, _container(set)),
        "frozenset": SafeBuiltin(frozenset, _container(frozenset)),
        "dict": SafeBuiltin(dict, _wrapped_dict),
        "sorted": _wrapped_sorted, "zip": _wrapped_zip, "min": _wrapped_min, "max": _wrapped_max,
        "sum": _wrapped_sum, "enumerate": _wrapped_enumerate, "any": _wrapped_any, "all": _wrapped_all,
        "map": _wrapped_map, "filter": _wrapped_filter, "reversed": _wrapped_reversed,
        "iter": _wrapped_iter, "next": next, "isinstance": _wrapped_isinstance,
        "issubclass": _wrapped_issubclass,
        "range": range, "len": len, "abs": abs, "round": round, "float": float, "int": int, "str": str,
        "bool": bool, "pow": pow, "divmod": divmod, "repr": repr, "hash": hash, "callable": callable,
        "chr": chr, "ord": ord, "slice": slice, "complex": complex,
        "format": format,  # a format spec only: no field resolution, unlike str.format
    })
    return out


BASE_BUILTINS: Mapping[str, Any] = MappingProxyType(_base_builtins())


def make_import(modules: Mapping[str, Namespace]) -> Callable[..., Namespace | None]:
    """The ``__import__`` of a mechanism: facades for allow-listed names, PolicyViolation otherwise."""
    table = dict(modules)

    def guarded_import(name: str, globals: Any = None, locals: Any = None,
                       fromlist: Any = (), level: int = 0) -> Namespace | None:
        if type(fromlist) is list and not fromlist and level == 0 and name in sys.modules:
            # C code (``PyImport_Import``, e.g. numpy fetching ``numpy._core._methods``) imports through
            # the current frame's ``__import__`` and only for its side effect: it then reads
            # ``sys.modules`` itself and ignores what we return. The ``import`` statement always passes
            # a tuple or None, so mechanism code never gets here, and it would get None anyway.
            return None
        if level != 0:
            refuse("relative imports are not allowed in mechanisms")
        if type(name) is not str or name not in table:
            refuse(f"import of module {name!r} is not allowed; allowed modules: {', '.join(ALLOWED_MODULES)}")
        if fromlist:
            return table[name]
        return table[name.split(".")[0]]

    return guarded_import


def restricted_globals(modules: Mapping[str, Namespace], name: str = "mechanism") -> dict[str, Any]:
    """Fresh globals for one mechanism; called by the worker each time it loads a mechanism."""
    builtins = dict(BASE_BUILTINS)
    builtins["__import__"] = make_import(modules)
    return {
        "__builtins__": builtins,
        "__name__": name,
        "_getattr_": guarded_getattr,
        "_getitem_": guarded_getitem,
        "_write_": guarded_write,
        "_getiter_": guarded_iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_inplacevar_": guarded_inplacevar,
        "_apply_": guarded_apply,
        "_print_": PrintCollector,
    }


