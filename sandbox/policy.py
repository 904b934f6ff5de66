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
from types import CodeType

from RestrictedPython import compile_restricted_exec
from RestrictedPython.transformer import RestrictingNodeTransformer

from bilevel.mechanisms.contract import HOOK_NAMES
from bilevel.sandbox.guards import (  # noqa: F401 - the policy's public names, re-exported
    PRINT_CAP_CHARS,
    ItemWriter,
    Namespace,
    PolicyViolation,
    PrintCollector,
    SafeBuiltin,
    describe,
    guarded_apply,
    guarded_getattr,
    guarded_getitem,
    guarded_inplacevar,
    guarded_iter,
    guarded_write,
    instance_attributes,
    namespace_members,
    namespace_name,
    refuse,
    take_violations,
    type_attributes,
)
from bilevel.sandbox.outcome import Outcome, Status
from bilevel.sandbox.restricted_builtins import (  # noqa: F401 - re-exported
    ALLOWED_MODULES,
    BASE_BUILTINS,
    make_import,
    restricted_globals,
)

#: Builtins the sandbox does not provide; using one without binding it is a policy violation.
UNAVAILABLE_NAMES: frozenset[str] = frozenset({
    "open", "exec", "eval", "compile", "getattr", "setattr", "delattr", "hasattr", "type", "vars",
    "dir", "globals", "locals", "input", "breakpoint", "memoryview", "bytearray", "bytes", "object",
    "super", "classmethod", "staticmethod", "property", "help", "exit", "quit", "id",
})

MAX_SOURCE_CHARS = 500_000


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
