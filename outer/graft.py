"""Structural operators that combine mechanisms: graft hooks, cross hooks over, wrap in a surrogate screen.

Every operator works on the source's syntax tree and returns new source in the
restricted dialect (or None when it does not apply); nothing is executed here.
A composed mechanism keeps each part's code whole: the part's module-level
names are suffixed (``propose`` -> ``propose_a``, ``EVERY`` -> ``EVERY_A``, so
the part's tunables stay UPPER_CASE and mutable), each part keeps its own
sub-dict of the state (``state["a"]``), and generated hooks dispatch to the
parts in order: ``guide`` merges their guidance as the host would, ``propose``
takes the first proposal, ``review`` chains the parts (a rejection stops the
chain), ``observe`` calls every part. A part always brings its own ``observe``
along, so the state its other hooks read is kept up to date.

Used by the offline author (``outer.authors.offline``); it may import only
the standard library.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

HOOKS = ("guide", "propose", "review", "observe")
ARGS = {"guide": "ctx, state", "propose": "ctx, state", "review": "ctx, state, candidate",
        "observe": "ctx, state, trial"}


@dataclass(frozen=True)
class Part:
    """A mechanism source and the hooks it contributes to a composition."""

    source: str
    hooks: tuple[str, ...]


def parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def hooks_of(source: str) -> tuple[str, ...]:
    """The hooks a source defines at module level, in contract order."""
    tree = parse(source)
    if tree is None:
        return ()
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    return tuple(h for h in HOOKS if h in defined)


def _top_names(tree: ast.Module) -> set[str]:
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            out.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return out


def _suffixed(name: str, tag: str) -> str:
    return f"{name}_{tag.upper()}" if name.isupper() else f"{name}_{tag.lower()}"


class _Rename(ast.NodeTransformer):
    def __init__(self, names: set[str], tag: str) -> None:
        self.names, self.tag = names, tag

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id in self.names:
            node.id = _suffixed(node.id, self.tag)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        if node.arg in self.names:
            node.arg = _suffixed(node.arg, self.tag)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        if node.name in self.names:
            node.name = _suffixed(node.name, self.tag)
        self.generic_visit(node)
        return node


def _split(tree: ast.Module) -> tuple[list[ast.stmt], list[ast.stmt]]:
    """(imports, definitions) of a module, without its docstring."""
    imports: list[ast.stmt] = []
    body: list[ast.stmt] = []
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        (imports if isinstance(node, ast.Import | ast.ImportFrom) else body).append(node)
    return imports, body


def _dispatch(hook: str, tags: list[str]) -> str:
    """A generated hook calling the parts' versions of ``hook`` (tagged ``tags``) in order."""
    head = f"def {hook}({ARGS[hook]}):\n"
    sub = {t: (f'state.setdefault("{t}", {{}})' if hook == "observe" else f'state.get("{t}", {{}})') for t in tags}
    if hook == "observe":
        return head + "".join(f"    {hook}_{t}(ctx, {sub[t]}, trial)\n" for t in tags)
    if hook == "propose":
        lines = [f"    found = {hook}_{t}(ctx, {sub[t]})\n    if found is not None:\n        return found\n"
                 for t in tags]
        return head + "".join(lines) + "    return None\n"
    if hook == "review":
        lines = [f"    verdict = review_{t}(ctx, {sub[t]}, current)\n    if isinstance(verdict, str):\n"
                 "        return verdict\n    if verdict is not None:\n        current = verdict\n"
                 "        changed = True\n" for t in tags]
        return (head + "    current = candidate\n    changed = False\n" + "".join(lines)
                + "    return current if changed else None\n")
    calls = ", ".join(f"guide_{t}(ctx, {sub[t]})" for t in tags)
    return head + f"    return merge_guidance([{calls}])\n"


MERGE_GUIDANCE = '''
def merge_guidance(parts):
    out = {}
    scale = 1.0
    for g in parts:
        if g is None:
            continue
        for k in ("focus", "freeze"):
            if k in g:
                out[k] = sorted(set(out.get(k, [])) | set(g[k]))
        if "step_scale" in g:
            scale = scale * g["step_scale"]
        for k in g:
            if k not in ("focus", "freeze", "step_scale") and k not in out:
                out[k] = g[k]
    if "focus" in out and "freeze" in out:
        out["focus"] = [n for n in out["focus"] if n not in out["freeze"]]
        if not out["focus"]:
            out.pop("focus")
    if scale != 1.0:
        out["step_scale"] = min(100.0, max(0.001, scale))
    return out or None
'''


def compose(parts: list[Part], title: str) -> str | None:
    """One mechanism made of ``parts`` (see the module doc); None if a part does not parse or nothing is left."""
    imports: list[str] = []
    bodies: list[str] = []
    by_hook: dict[str, list[str]] = {h: [] for h in HOOKS}
    for k, part in enumerate(parts):
        tree = parse(part.source)
        if tree is None:
            return None
        tag = "abcdefgh"[k]
        own = hooks_of(part.source)
        wanted = [h for h in own if h in part.hooks or h == "observe"]
        new_imports, body = _split(tree)
        renamed = _Rename(_top_names(tree), tag)
        module = ast.fix_missing_locations(renamed.visit(ast.Module(body=body, type_ignores=[])))
        imports.extend(ast.unparse(i) for i in new_imports if ast.unparse(i) not in imports)
        bodies.append(ast.unparse(module))
        for h in wanted:
            by_hook[h].append(tag)
    active = [h for h in HOOKS if by_hook[h]]
    if not active or active == ["observe"]:
        return None
    doc = f'"""{title}\n\nComposed by the offline author (outer.graft): each part\'s code is kept whole under a suffix."""'
    out = [doc, "\n".join(imports)] + bodies
    if by_hook["guide"]:
        out.append(MERGE_GUIDANCE.strip())
    out.extend(_dispatch(h, by_hook[h]).rstrip() for h in active)
    return "\n\n\n".join(s for s in out if s) + "\n"


SCREEN = '''
def screen_fit(space, history):
    scored = [t for t in history if t["score"] is not None]
    d = spacekit.dims(space)
    if len(scored) < max(SCREEN_MIN_HISTORY, 2 * d + 2):
        return None
    x = np.array([spacekit.encode(space, t["config"]) for t in scored])
    y = np.array([float(t["score"]) for t in scored])
    spread = float(y.std())
    if not spread > 0:
        return None
    rows = [[1.0] + row.tolist() + (row * row).tolist() for row in x]
    coef = np.linalg.lstsq(np.array(rows), (y - y.mean()) / spread, rcond=None)[0]
    if not bool(np.all(np.isfinite(coef))):
        return None
    return coef.tolist()


def screen_predict(coef, u):
    d = len(u)
    return coef[0] + sum([coef[1 + j] * u[j] + coef[1 + d + j] * u[j] * u[j] for j in range(d)])


def propose(ctx, state):
    first = propose_raw(ctx, state)
    if first is None:
        return None
    coef = screen_fit(ctx["space"], ctx["history"])
    if coef is None:
        return first
    best = first
    best_value = screen_predict(coef, spacekit.encode(ctx["space"], first))
    for k in range(SCREEN_CANDIDATES - 1):
        other = propose_raw(ctx, state)
        if other is None:
            continue
        value = screen_predict(coef, spacekit.encode(ctx["space"], other))
        if value < best_value:
            best = other
            best_value = value
    return best
'''


def wrap_in_screen(source: str, candidates: int = 4, min_history: int = 10) -> str | None:
    """``source`` with its ``propose`` asked ``candidates`` times per call and the proposal a quadratic
    surrogate of the history predicts best returned; None when the source has no ``propose``."""
    tree = parse(source)
    if tree is None or "propose" not in hooks_of(source):
        return None
    if {"propose_raw", "screen_fit", "screen_predict", "SCREEN_CANDIDATES"} & _top_names(tree):
        return None  # wrapped already
    module = _Rename({"propose"}, "raw").visit(tree)
    text = ast.unparse(ast.fix_missing_locations(module))
    consts = f"SCREEN_CANDIDATES = {candidates}\nSCREEN_MIN_HISTORY = {min_history}\n"
    imports = "".join(f"import {m}\n" for m in ("numpy as np", "spacekit")
                      if not any(ln.strip() == f"import {m}" for ln in text.splitlines()))
    doc = ('"""Wrapped in a surrogate screen by the offline author: propose asks the original propose '
           'SCREEN_CANDIDATES times and keeps the proposal a quadratic fit of the history (SCREEN_MIN_HISTORY '
           'scored trials at least) predicts best.\n\nThe original:\n"""\n')
    return doc + imports + consts + "\n" + text + "\n\n" + SCREEN
