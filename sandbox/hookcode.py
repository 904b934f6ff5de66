"""What the worker knows of a mechanism's code: compiled once per source, each hook's arity, and which
ctx keys a hook can read, so that the worker builds only those (``sandbox.hooks.Worker.ctx``).

A hook gets a fresh ctx per call, and the history in it is the costly part to copy (every trial so far,
for every call). Most hooks never see the ctx dict itself: they read a few of its keys with constant
subscripts, ``ctx["space"]``, which the restricted dialect compiles to ``_getitem_(ctx, "space")``
(``sandbox.policy``). :func:`ctx_keys` reads a hook's bytecode and returns the keys it reads where every
use of its first parameter is exactly that pattern: then the dict never reaches the mechanism, only the
values under those keys do, and a ctx that holds only those keys (each a fresh copy, as before) gives the
same results. Anything else (the dict passed on, iterated, stored, a method called on it, a dynamic key,
the parameter captured by a nested function or comprehension, reassigned or deleted) gives None: the
whole ctx, as always. Mechanism code cannot name ``_getitem_`` (names starting with ``_`` are refused),
nor reach frames or ``locals()``, so the pattern cannot be faked and nothing else can see the argument.

The keys are found when the fork server compiles a mechanism (:func:`compile_once`, for every code object
the module holds) and looked up when the worker adopts a hook.
"""

from __future__ import annotations

import dis
from types import CodeType, FunctionType

from bilevel.sandbox import policy
from bilevel.sandbox.outcome import Outcome

_CACHE: dict[CodeType, frozenset[str] | None] = {}
MAX_CACHED = 4096
_SKIP = ("PRECALL", "CACHE")


_COMPILED: dict[tuple[str, str], tuple[CodeType | None, Outcome]] = {}
MAX_COMPILED = 64


def compile_once(source: str, filename: str) -> tuple[CodeType | None, Outcome]:
    """``policy.compile_source``, memoised in this process: the fork server compiles each mechanism of a
    fork request before it forks (``sandbox.worker.ForkServer.fork``), so the workers of later inner runs
    with the same stack find the code here instead of compiling it again (about 5 ms per mechanism).
    A code object is immutable, and each load executes it in fresh globals."""
    key = (source, filename)
    found = _COMPILED.get(key)
    if found is None:
        found = policy.compile_source(source, filename)
        if found[0] is not None:
            analyse_module(found[0])  # which ctx keys each function reads (ctx_keys), once too
        if len(_COMPILED) >= MAX_COMPILED:
            _COMPILED.clear()
        _COMPILED[key] = found
    return found


def accepts(fn: FunctionType, n: int) -> bool:
    """Whether ``fn`` can be called with ``n`` positional arguments."""
    code = fn.__code__
    required = code.co_argcount - len(fn.__defaults__ or ())
    kw_required = code.co_kwonlyargcount - len(fn.__kwdefaults__ or {})
    varargs = bool(code.co_flags & 0x04)
    return kw_required == 0 and required <= n and (n <= code.co_argcount or varargs)


def ctx_keys(code: CodeType) -> frozenset[str] | None:
    """The ctx keys a hook with this code reads (see the module doc), or None where it may read the dict."""
    if code in _CACHE:
        return _CACHE[code]
    try:
        found = _analyse(code)
    except Exception:  # noqa: BLE001 - any surprise in the bytecode means the whole ctx
        found = None
    if len(_CACHE) >= MAX_CACHED:
        _CACHE.clear()
    _CACHE[code] = found
    return found


def analyse_module(code: CodeType) -> None:
    """Analyse (and cache) every function code object nested in a compiled mechanism module."""
    for const in code.co_consts:
        if isinstance(const, CodeType):
            ctx_keys(const)
            analyse_module(const)


def _analyse(code: CodeType) -> frozenset[str] | None:
    if code.co_argcount < 1:
        return None
    name = code.co_varnames[0]
    if name in code.co_cellvars or name in code.co_freevars:
        return None
    ins = list(dis.get_instructions(code))
    keys: set[str] = set()
    for i, op in enumerate(ins):
        if op.argval != name or not (op.opcode in dis.haslocal or op.opcode in dis.hasfree):
            continue
        if op.opname != "LOAD_FAST" or op.is_jump_target or i < 1 or i + 2 >= len(ins):
            return None
        before, key = ins[i - 1], ins[i + 1]
        if before.opname != "LOAD_GLOBAL" or before.argval != "_getitem_" or not before.argrepr.startswith("NULL + "):
            return None
        if key.opname != "LOAD_CONST" or type(key.argval) is not str or key.is_jump_target:
            return None
        j = i + 2
        while j < len(ins) and ins[j].opname in _SKIP and not ins[j].is_jump_target:
            j += 1
        if j >= len(ins) or ins[j].opname != "CALL" or ins[j].arg != 2 or ins[j].is_jump_target:
            return None
        keys.add(key.argval)
    return frozenset(keys)
