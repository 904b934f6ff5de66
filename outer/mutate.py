"""Source-level mutation of mechanisms: their UPPER_CASE tunables, point mutations, guards, grafted blocks.

The offline author changes a mechanism by editing its source text, so every
mutant is real source that goes through the sandbox and the judge like any
other candidate. Tunables are edited in place (the rest of the text is left
as it is); the structural operators (:func:`mutate_point`, :func:`insert_guard`,
:func:`graft_block`) edit the syntax tree and unparse it (comments are lost,
docstrings kept). Each returns ``(source, description)`` or None when it
does not apply. Standard library only.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass

FACTORS = (0.5, 0.7, 1.5, 2.0)


@dataclass(frozen=True)
class Tunable:
    """A module-level ``NAME = number`` assignment and where its number stands in the source."""

    name: str
    value: int | float
    line: int  # 1-based
    col: int
    end_col: int


def tunables(source: str) -> list[Tunable]:
    """The UPPER_CASE numeric constants assigned at module level, in source order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out: list[Tunable] = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not (isinstance(target, ast.Name) and target.id.isupper()):
            continue
        if isinstance(value, ast.Constant) and type(value.value) in (int, float):
            number = value.value
            assert isinstance(number, int | float)
            if value.end_lineno == value.lineno and value.end_col_offset is not None:
                out.append(Tunable(target.id, number, value.lineno, value.col_offset, value.end_col_offset))
    return out


def _new_value(value: int | float, factor: float) -> int | float:
    if isinstance(value, int):
        changed = max(1, round(value * factor))
        return changed if changed != value else value + (1 if factor > 1 else -1 if value > 1 else 1)
    return float(f"{value * factor:.6g}")


def set_tunable(source: str, tunable: Tunable, value: int | float) -> str:
    """``source`` with ``tunable``'s number replaced by ``value`` (everything else untouched)."""
    lines = source.splitlines(keepends=True)
    row = lines[tunable.line - 1]
    lines[tunable.line - 1] = row[: tunable.col] + repr(value) + row[tunable.end_col :]
    return "".join(lines)


def mutate_constants(source: str, rng: random.Random, count: int = 1) -> tuple[str, list[str]] | None:
    """Change ``count`` tunables by a random factor; None when the source has none."""
    found = tunables(source)
    if not found:
        return None
    changes: list[str] = []
    for tunable in sorted(rng.sample(found, min(count, len(found))), key=lambda t: (-t.line, -t.col)):
        value = _new_value(tunable.value, rng.choice(FACTORS))
        source = set_tunable(source, tunable, value)
        changes.append(f"{tunable.name} {tunable.value!r} -> {value!r}")
    return source, sorted(changes)


# --------------------------------------------------------------------------- point mutations
SWAP_COMPARE: dict[type, tuple[type, ...]] = {
    ast.Lt: (ast.LtE, ast.Gt), ast.LtE: (ast.Lt, ast.GtE), ast.Gt: (ast.GtE, ast.Lt), ast.GtE: (ast.Gt, ast.LtE),
    ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,),
}
SWAP_BINOP: dict[type, tuple[type, ...]] = {
    ast.Add: (ast.Sub,), ast.Sub: (ast.Add,), ast.Mult: (ast.Div,), ast.Div: (ast.Mult,),
    ast.FloorDiv: (ast.Div,), ast.Pow: (ast.Mult,),
}
SYMBOL: dict[type, str] = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.Add: "+",
          ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Pow: "**", ast.And: "and", ast.Or: "or"}


def _functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [n for n in tree.body if isinstance(n, ast.FunctionDef)]


def _sites(tree: ast.Module) -> list[tuple[str, ast.AST, ast.FunctionDef]]:
    """Every place a point mutation can change: (kind, node, enclosing function)."""
    out: list[tuple[str, ast.AST, ast.FunctionDef]] = []
    for fn in _functions(tree):
        for node in ast.walk(fn):
            if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAP_COMPARE:
                out.append(("comparison", node, fn))
            elif isinstance(node, ast.BinOp) and type(node.op) in SWAP_BINOP:
                out.append(("operator", node, fn))
            elif isinstance(node, ast.BoolOp):
                out.append(("boolean", node, fn))
            elif (isinstance(node, ast.Constant) and type(node.value) in (int, float)
                  and node.value not in (0, 1)):
                out.append(("expression", node, fn))
    return out


def _apply(kind: str, node: ast.AST, rng: random.Random) -> str:
    if isinstance(node, ast.Compare):
        old: type = type(node.ops[0])
        new: type = rng.choice(SWAP_COMPARE[old])
        node.ops[0] = new()
        return f"comparison {SYMBOL[old]} -> {SYMBOL[new]}"
    if isinstance(node, ast.BinOp):
        old = type(node.op)
        new = rng.choice(SWAP_BINOP[old])
        node.op = new()
        return f"operator {SYMBOL[old]} -> {SYMBOL[new]}"
    if isinstance(node, ast.BoolOp):
        old = type(node.op)
        node.op = ast.Or() if old is ast.And else ast.And()
        return f"boolean {SYMBOL[old]} -> {SYMBOL[type(node.op)]}"
    assert isinstance(node, ast.Constant) and isinstance(node.value, int | float)
    value = node.value
    node.value = _new_value(value, rng.choice(FACTORS))
    return f"expression {value!r} -> {node.value!r}"


def mutate_point(source: str, rng: random.Random) -> tuple[str, str] | None:
    """Replace one comparison, arithmetic or boolean operator, or one number inside a function."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    sites = _sites(tree)
    if not sites:
        return None
    kind, node, fn = rng.choice(sites)
    line = getattr(node, "lineno", 0)
    change = _apply(kind, node, rng)
    return ast.unparse(tree) + "\n", f"replace {change} in {fn.name} (line {line})"


# --------------------------------------------------------------------------- guards
#: kind -> (condition, tunable, default): the hook returns None (does nothing) while the condition holds.
GUARDS: dict[str, tuple[str, str, int | float]] = {
    "warm-up": ('ctx["trial_index"] < {name}', "GUARD_WARMUP", 6),
    "thin-out": ('ctx["trial_index"] % {name} != 0', "GUARD_EVERY", 2),
    "coin": ("random.random() >= {name}", "GUARD_SHARE", 0.5),
    "late-stop": ('ctx["trial_index"] >= {name} * ctx["budget"]', "GUARD_UNTIL", 0.7),
    "no-incumbent": ('ctx["incumbent"] is None or len(ctx["history"]) < {name}', "GUARD_MIN_HISTORY", 4),
}


def _fresh_name(tree: ast.Module, base: str) -> str:
    taken = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def _insert_at_top(fn: ast.FunctionDef, stmt: ast.stmt) -> None:
    first = fn.body[0] if fn.body else None
    at = 1 if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) else 0
    fn.body.insert(at, stmt)


def _add_constant(tree: ast.Module, name: str, value: int | float) -> None:
    at = max((i + 1 for i, n in enumerate(tree.body) if isinstance(n, ast.Import | ast.ImportFrom | ast.Assign)),
             default=0)
    tree.body.insert(at, ast.parse(f"{name} = {value!r}").body[0])


def _ensure_import(tree: ast.Module, module: str) -> None:
    if not any(isinstance(n, ast.Import) and any(a.name == module and a.asname is None for a in n.names)
               for n in tree.body):
        doc = 1 if tree.body and isinstance(tree.body[0], ast.Expr) else 0
        tree.body.insert(doc, ast.parse(f"import {module}").body[0])


def insert_guard(source: str, rng: random.Random) -> tuple[str, str] | None:
    """Make one of ``propose``, ``guide`` or ``review`` do nothing while a guard holds (a new tunable)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    hooks = [fn for fn in _functions(tree) if fn.name in ("propose", "guide", "review")]
    if not hooks:
        return None
    fn = rng.choice(hooks)
    kind = rng.choice(sorted(GUARDS))
    condition, base, default = GUARDS[kind]
    name = _fresh_name(tree, base)
    _insert_at_top(fn, ast.parse(f"if {condition.format(name=name)}:\n    return None").body[0])
    _add_constant(tree, name, default)
    if kind == "coin":
        _ensure_import(tree, "random")
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n", f"guard {fn.name}: {kind} ({name} = {default!r})"


# --------------------------------------------------------------------------- grafted blocks
def _guards_of(tree: ast.Module) -> list[tuple[str, ast.If]]:
    """Early-return guards of the hooks: ``if ...: return None`` at the top level of a hook's body."""
    out: list[tuple[str, ast.If]] = []
    for fn in _functions(tree):
        if fn.name not in ("propose", "guide", "review"):
            continue
        for stmt in fn.body:
            if (isinstance(stmt, ast.If) and not stmt.orelse and len(stmt.body) == 1
                    and isinstance(stmt.body[0], ast.Return)
                    and (stmt.body[0].value is None or (isinstance(stmt.body[0].value, ast.Constant)
                                                        and stmt.body[0].value.value is None))):
                out.append((fn.name, stmt))
    return out


def graft_block(source: str, donor: str, rng: random.Random) -> tuple[str, str] | None:
    """Copy one early-return guard block of ``donor``'s hooks into the same hook of ``source`` (or another of
    its propose/guide/review hooks), with the donor's UPPER_CASE constants it reads (suffixed ``_G``).

    Only blocks that read nothing but ``ctx``, those constants and ``len`` are grafted."""
    try:
        tree, other = ast.parse(source), ast.parse(donor)
    except SyntaxError:
        return None
    targets = {fn.name: fn for fn in _functions(tree) if fn.name in ("propose", "guide", "review")}
    consts = {t.id: n.value for n in other.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name) and t.id.isupper() and isinstance(n.value, ast.Constant)}
    usable = []
    for hook, block in _guards_of(other):
        names = {n.id for n in ast.walk(block.test) if isinstance(n, ast.Name)}
        if names <= {"ctx", "len"} | set(consts) and targets:
            usable.append((hook, block))
    if not usable:
        return None
    hook, block = rng.choice(usable)
    fn = targets.get(hook) or targets[rng.choice(sorted(targets))]
    renames = {n: _fresh_name(tree, f"{n}_G") for n in sorted({x.id for x in ast.walk(block.test)
                                                               if isinstance(x, ast.Name)} & set(consts))}
    text = ast.unparse(block)
    grafted = ast.parse(text).body[0]
    for node in ast.walk(grafted):
        if isinstance(node, ast.Name) and node.id in renames:
            node.id = renames[node.id]
    _insert_at_top(fn, grafted)
    for old, new in renames.items():
        value = consts[old]
        assert isinstance(value, ast.Constant) and isinstance(value.value, int | float)
        _add_constant(tree, new, value.value)
    condition = ast.unparse(grafted.test)  # type: ignore[attr-defined]
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n", f"graft block `if {condition}: return None` into {fn.name}"
