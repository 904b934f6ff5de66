"""Layer 1's guards: what the restricted dialect's hooks allow at run time.

The compiled mechanism code (``sandbox.policy``) calls these for every
attribute access, item access, write, iteration, in-place operation and
``print``. They are allow-lists and raise :class:`PolicyViolation` through
:func:`refuse`, which also records the violation so that the worker reports
POLICY_VIOLATION for a call that recorded one even when the mechanism caught it.

It may import ``bilevel.sandbox.outcome`` only (and numpy, RestrictedPython's guards).
"""

from __future__ import annotations

import collections
import itertools
import operator
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NoReturn

import numpy as np

PRINT_CAP_CHARS = 16_384
_MAX_RECORDED = 16


# --------------------------------------------------------------------------- violations
class PolicyViolation(Exception):
    """Raised by a guard (layer ``policy``) or the worker's audit hook (layer ``audit``)."""

    def __init__(self, message: str, layer: str = "policy") -> None:
        super().__init__(message)
        self.layer = layer

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


_VIOLATIONS: list[PolicyViolation] = []


def refuse(message: str, layer: str = "policy") -> NoReturn:
    """Record a violation and raise it; called by every guard that says no."""
    exc = PolicyViolation(message, layer)
    if len(_VIOLATIONS) < _MAX_RECORDED:
        _VIOLATIONS.append(exc)
    raise exc


def take_violations() -> list[PolicyViolation]:
    """The violations recorded since the last call (and clear them); called by the worker around each hook."""
    out = list(_VIOLATIONS)
    _VIOLATIONS.clear()
    return out


# --------------------------------------------------------------------------- facade type
class Namespace:
    """A frozen module facade: only its members are attributes; it has no dunder attributes.

    Hiding ``__name__`` matters: ``from numpy import x`` falls back to
    ``sys.modules["numpy.x"]`` when the module object names itself.
    """

    __slots__ = ("_ns_name", "_ns_members")

    def __init__(self, name: str, members: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_ns_name", name)
        object.__setattr__(self, "_ns_members", MappingProxyType(dict(members)))

    def __getattribute__(self, attr: str) -> Any:
        members = object.__getattribute__(self, "_ns_members")
        if attr in members:
            return members[attr]
        if attr.startswith("_"):
            raise AttributeError(attr)
        refuse(f"module {namespace_name(self)!r} has no allowed attribute {attr!r}")

    def __setattr__(self, attr: str, value: Any) -> None:
        refuse(f"cannot set attribute {attr!r} of module {namespace_name(self)!r}")

    def __delattr__(self, attr: str) -> None:
        refuse(f"cannot delete attribute {attr!r} of module {namespace_name(self)!r}")

    def __repr__(self) -> str:
        return f"<module {namespace_name(self)!r} (sandbox facade)>"


def namespace_name(ns: Namespace) -> str:
    """The module name a facade stands for (host-side helper)."""
    return str(object.__getattribute__(ns, "_ns_name"))


def namespace_members(ns: Namespace) -> Mapping[str, Any]:
    """The members of a facade (host-side helper)."""
    members: Mapping[str, Any] = object.__getattribute__(ns, "_ns_members")
    return members


class SafeBuiltin:
    """A builtin type replaced by a function that iterates through the guard (``list``, ``dict``...).

    ``isinstance(x, list)`` still works (the sandbox's ``isinstance`` unwraps it),
    and the type's allow-listed methods stay reachable (``dict.fromkeys``).
    """

    __slots__ = ("_sb_real", "_sb_fn")
    _sb_real: type
    _sb_fn: Callable[..., Any]

    def __init__(self, real: type, fn: Callable[..., Any]) -> None:
        object.__setattr__(self, "_sb_real", real)
        object.__setattr__(self, "_sb_fn", fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._sb_fn(*args, **kwargs)

    def __setattr__(self, attr: str, value: Any) -> None:
        refuse(f"cannot set attribute {attr!r} of a builtin")

    def __repr__(self) -> str:
        return f"<class {self._sb_real.__name__!r}>"


class ItemWriter:
    """What ``_write_`` returns for containers that are not exact dicts or lists: item writes only."""

    __slots__ = ("_iw_target",)
    _iw_target: Any

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_iw_target", target)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._iw_target[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._iw_target[key]

    def __setattr__(self, attr: str, value: Any) -> None:
        refuse(f"cannot set attribute {attr!r} of {describe(self._iw_target)}")

    def __delattr__(self, attr: str) -> None:
        refuse(f"cannot delete attribute {attr!r} of {describe(self._iw_target)}")


# --------------------------------------------------------------------------- attribute policy
def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STR_ATTRS = _names(
    "capitalize casefold center count endswith expandtabs find index isalnum isalpha isascii "
    "isdecimal isdigit isidentifier islower isnumeric isprintable isspace istitle isupper join "
    "ljust lower lstrip partition removeprefix removesuffix replace rfind rindex rjust rpartition "
    "rsplit rstrip split splitlines startswith strip swapcase title upper zfill"
)
_DICT_ATTRS = _names("clear copy fromkeys get items keys pop popitem setdefault update values")
_SET_ATTRS = _names(
    "add clear copy difference difference_update discard intersection intersection_update "
    "isdisjoint issubset issuperset pop remove symmetric_difference symmetric_difference_update union update"
)
_NDARRAY_ATTRS = _names(
    "shape ndim size T tolist mean sum min max argmin argmax argsort copy reshape flatten std var item "
    "any all ravel cumsum prod clip round dot sort"
)

#: Allowed attributes per type; a type's allowance is the union over its MRO.
ATTRIBUTE_TABLE: dict[type, frozenset[str]] = {
    str: _STR_ATTRS,
    list: _names("append clear copy count extend index insert pop remove reverse sort"),
    tuple: _names("count index"),
    dict: _DICT_ATTRS,
    set: _SET_ATTRS,
    frozenset: _names("copy difference intersection isdisjoint issubset issuperset symmetric_difference union"),
    int: _names("bit_length bit_count conjugate real imag numerator denominator as_integer_ratio"),
    float: _names("as_integer_ratio conjugate is_integer real imag"),
    complex: _names("conjugate real imag"),
    range: _names("count index start stop step"),
    slice: _names("start stop step indices"),
    collections.deque: _names(
        "append appendleft clear copy count extend extendleft index insert maxlen pop popleft remove reverse rotate"
    ),
    collections.Counter: _names("elements most_common subtract total update"),
    collections.OrderedDict: _names("move_to_end popitem"),
    itertools.chain: _names("from_iterable"),
    np.ndarray: _NDARRAY_ATTRS,
    np.generic: _names("item tolist real imag"),
    BaseException: _names("args"),
}

_INSTANCE_CACHE: dict[type, frozenset[str]] = {}
_TYPE_CACHE: dict[type, frozenset[str]] = {}


def _mro_union(tp: type) -> frozenset[str]:
    out: set[str] = set()
    for klass in tp.__mro__:
        out.update(ATTRIBUTE_TABLE.get(klass, ()))
    return frozenset(out)


def instance_attributes(tp: type) -> frozenset[str]:
    """The attributes mechanism code may read on instances of ``tp``."""
    if tp not in _INSTANCE_CACHE:
        _INSTANCE_CACHE[tp] = _mro_union(tp)
    return _INSTANCE_CACHE[tp]


def type_attributes(tp: type) -> frozenset[str]:
    """The attributes mechanism code may read on the type ``tp`` itself: its allowed methods."""
    if tp not in _TYPE_CACHE:
        _TYPE_CACHE[tp] = frozenset(n for n in _mro_union(tp) if callable(getattr(tp, n, None)))
    return _TYPE_CACHE[tp]


def describe(obj: Any) -> str:
    """A short, safe description of ``obj`` for messages."""
    if type(obj) is Namespace:
        return f"module {namespace_name(obj)!r}"
    if isinstance(obj, type):
        return f"type {obj.__name__!r}"
    return f"{type(obj).__name__!r} object"


def guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``_getattr_``: read an allow-listed attribute; raise PolicyViolation for any other."""
    if type(name) is not str:
        refuse("attribute names must be strings")
    if name.startswith("_"):
        refuse(f"attribute {name!r} starts with an underscore")
    if type(obj) is Namespace:
        members = object.__getattribute__(obj, "_ns_members")
        if name in members:
            return members[name]
        refuse(f"module {namespace_name(obj)!r} has no allowed attribute {name!r}")
    if type(obj) is SafeBuiltin:
        real = object.__getattribute__(obj, "_sb_real")
        if name in type_attributes(real):
            return getattr(real, name)
        refuse(f"attribute {name!r} of type {real.__name__!r} is not allowed in the sandbox")
    allowed = type_attributes(obj) if isinstance(obj, type) else instance_attributes(type(obj))
    if name not in allowed:
        refuse(f"attribute {name!r} of {describe(obj)} is not allowed in the sandbox")
    return getattr(obj, name, *default)


_ITEM_READABLE = (dict, list, tuple, str, range, np.ndarray, collections.deque)
_ITEM_WRITABLE = (dict, list, np.ndarray, collections.deque)


def guarded_getitem(obj: Any, key: Any) -> Any:
    """``_getitem_``: indexing of plain containers and arrays only."""
    if isinstance(obj, _ITEM_READABLE):
        return obj[key]
    refuse(f"indexing {describe(obj)} is not allowed in the sandbox")


def guarded_write(obj: Any) -> Any:
    """``_write_``: the mechanism's own dicts and lists as they are; other containers item-writable only."""
    if type(obj) in (dict, list):
        return obj
    if isinstance(obj, _ITEM_WRITABLE):
        return ItemWriter(obj)
    refuse(f"cannot modify {describe(obj)}: mechanisms may only change items of their own dicts, lists and arrays")


def guarded_iter(obj: Any) -> Iterator[Any]:
    """``_getiter_``: every ``for``, comprehension and wrapped builtin iterates through here."""
    if type(obj) in (Namespace, SafeBuiltin):
        refuse(f"cannot iterate over {describe(obj)}")
    return iter(obj)


_INPLACE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor,
    "@=": operator.imatmul,
}


def guarded_inplacevar(op: str, target: Any, value: Any) -> Any:
    """``_inplacevar_``: ``x += y`` on a plain name."""
    fn = _INPLACE_OPS.get(op)
    if fn is None:
        refuse(f"in-place operator {op!r} is not allowed")
    return fn(target, value)


def guarded_apply(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``_apply_``: calls with ``*args`` or ``**kwargs``."""
    return fn(*args, **kwargs)


class PrintCollector:
    """``_print_``: ``print`` output is kept (capped) in memory and never written anywhere."""

    __slots__ = ("_parts", "_size")

    def __init__(self, _getattr_: Any = None) -> None:
        self._parts: list[str] = []
        self._size = 0

    def _call_print(self, *objects: Any, sep: Any = " ", end: Any = "\n", flush: Any = False) -> None:
        if self._size >= PRINT_CAP_CHARS:
            return
        text = (sep if isinstance(sep, str) else " ").join(str(o) for o in objects)
        text += end if isinstance(end, str) else "\n"
        text = text[: PRINT_CAP_CHARS - self._size]
        self._parts.append(text)
        self._size += len(text)

    def __call__(self) -> str:
        return "".join(self._parts)


