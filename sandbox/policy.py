"""Layer 1 of the sandbox: the restricted dialect mechanisms are written in.

Mechanism source is compiled with RestrictedPython (``compile_restricted_exec``)
under :class:`MechanismPolicy`, which adds to RestrictedPython's own rules: no
class definitions, and no use of builtins the sandbox does not provide
(``open``, ``getattr``, ``type``, ...) unless the module binds that name itself.

The compiled code runs in the globals built by :func:`restricted_globals`:
every attribute access, item access, write, iteration, unpacking, in-place
operation, ``print`` and ``import`` goes through a guard defined here. The
guards are allow-lists:

- ``_getattr_`` allows a fixed set of attributes per type (the methods of the
  plain data types, a safe subset of ``ndarray``, the members of a facade
  module) and raises :class:`PolicyViolation` for anything else;
- ``_write_`` lets a mechanism change items of its own dicts, lists, deques
  and arrays, never attributes;
- ``__import__`` returns facades (``sandbox.facades``) for the allow-listed
  module names and refuses every other name.

Violations are *sticky*: besides raising, :func:`refuse` records the violation,
and the worker reports POLICY_VIOLATION for a call that recorded one even when
the mechanism caught the exception.

Host side, :func:`compile_mechanism` checks a source without running it. The
worker (``sandbox.worker``) uses :func:`compile_source` and
:func:`restricted_globals`.
"""

from __future__ import annotations

import ast
import collections
import itertools
import operator
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import CodeType, MappingProxyType
from typing import Any, NoReturn

import numpy as np
from RestrictedPython import compile_restricted_exec, safe_builtins
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import RestrictingNodeTransformer

from bilevel.mechanisms.contract import HOOK_NAMES
from bilevel.sandbox.outcome import Outcome, Status

#: Module names a mechanism may import (``numpy.linalg`` comes with ``numpy``).
ALLOWED_MODULES: tuple[str, ...] = (
    "math", "random", "statistics", "itertools", "functools", "collections", "numpy", "spacekit",
)

#: Builtins the sandbox does not provide; using one without binding it is a policy violation.
UNAVAILABLE_NAMES: frozenset[str] = frozenset({
    "open", "exec", "eval", "compile", "getattr", "setattr", "delattr", "hasattr", "type", "vars",
    "dir", "globals", "locals", "input", "breakpoint", "memoryview", "bytearray", "bytes", "object",
    "super", "classmethod", "staticmethod", "property", "help", "exit", "quit", "id",
})

MAX_SOURCE_CHARS = 500_000
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
        if name in namespace_members(obj):
            return namespace_members(obj)[name]
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


# --------------------------------------------------------------------------- compilation
class MechanismPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus: no class definitions."""

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.error(node, "class definitions are not allowed in mechanisms; keep state in dicts")
        return node


def _bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


def unavailable_names(tree: ast.AST) -> list[str]:
    """Names of unavailable builtins that ``tree`` reads without ever binding them."""
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return sorted((loaded & UNAVAILABLE_NAMES) - _bound_names(tree))


def hook_names(tree: ast.Module) -> list[str]:
    """The hooks ``tree`` defines as top-level functions, in contract order."""
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    return [h for h in HOOK_NAMES if h in defined]


def _compile_error(message: str) -> Outcome:
    return Outcome(Status.COMPILE_ERROR, message=message, layer="policy")


def _parse(source: str, filename: str) -> ast.Module | Outcome:
    if not isinstance(source, str):
        return _compile_error(f"mechanism source must be str, got {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        return _compile_error(f"mechanism source is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
    try:
        return ast.parse(source, filename, mode="exec")
    except SyntaxError as exc:
        text = (exc.text or "").strip()
        return _compile_error(f"line {exc.lineno}: {exc.msg}" + (f": {text!r}" if text else ""))
    except (ValueError, RecursionError, MemoryError) as exc:
        return _compile_error(f"cannot parse: {type(exc).__name__}: {exc}")


def _restrict(tree: ast.Module, filename: str) -> CodeType | Outcome:
    try:
        result = compile_restricted_exec(tree, filename, policy=MechanismPolicy)
    except SyntaxError as exc:
        return _compile_error(f"line {exc.lineno}: {exc.msg}")
    except (ValueError, TypeError, RecursionError, MemoryError) as exc:
        return _compile_error(f"cannot compile: {type(exc).__name__}: {exc}")
    if result.errors or result.code is None:
        return Outcome(Status.POLICY_VIOLATION, message="; ".join(result.errors) or "rejected", layer="policy")
    return result.code


def compile_source(source: str, filename: str = "<mechanism>") -> tuple[CodeType | None, Outcome]:
    """Compile mechanism source under the policy; the outcome is as for :func:`compile_mechanism`."""
    tree = _parse(source, filename)
    if isinstance(tree, Outcome):
        return None, tree
    hooks = hook_names(tree)
    missing = unavailable_names(tree)
    code = _restrict(tree, filename)
    if isinstance(code, Outcome):
        return None, code
    if missing:
        names = ", ".join(repr(n) for n in missing)
        return None, Outcome(Status.POLICY_VIOLATION, layer="policy",
                             message=f"uses {names}, not available in the sandbox (no file, introspection "
                                     "or code-execution builtins)")
    if not hooks:
        return None, Outcome(Status.CONTRACT_VIOLATION, layer="policy",
                             message=f"defines none of the hooks {', '.join(HOOK_NAMES)} as a top-level function")
    return code, Outcome(Status.OK, value={"hooks": hooks})


def compile_mechanism(source: str, filename: str = "<mechanism>") -> Outcome:
    """Check mechanism source on the host without running it.

    Called by the host before a mechanism is sent to a worker (and by authors
    to vet source early). OK carries ``{"hooks": [...]}``; COMPILE_ERROR is a
    syntax error (the message names the line); POLICY_VIOLATION is a rule of
    the restricted dialect; CONTRACT_VIOLATION means no hook is defined.
    Never raises.
    """
    try:
        return compile_source(source, filename)[1]
    except Exception as exc:  # noqa: BLE001 - the host must never fail on hostile source
        return _compile_error(f"cannot compile: {type(exc).__name__}: {exc}")
