"""The import graph points one way: mechanisms <- sandbox <- inner <- judge <- outer <- runs.

Every import is absolute (``from bilevel.judge ...``); no module imports a room by its bare
name, and no two modules import each other (directly or through a longer cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["mechanisms", "sandbox", "inner", "judge", "outer", "runs"]


def _imports(path: Path) -> list[str]:
    """Every absolute module name ``path`` imports (relative imports are refused elsewhere)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)  # may be submodules
    return found


def _rooms(path: Path) -> set[str]:
    """The rooms of bilevel that ``path`` imports (``bilevel.judge.x`` is the room ``judge``)."""
    rooms = set()
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "bilevel" and len(parts) > 1:
            rooms.add(parts[1])
    return rooms & set(ORDER)


def _sources() -> list[Path]:
    return [p for room in ORDER for p in sorted((ROOT / room).rglob("*.py")) if "builtin" not in p.parts]


@pytest.mark.parametrize("package", ORDER)
def test_package_imports_only_lower_layers(package: str) -> None:
    allowed = set(ORDER[: ORDER.index(package) + 1])
    for path in sorted((ROOT / package).rglob("*.py")):
        if "builtin" in path.parts:
            continue
        bad = _rooms(path) - allowed
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}, above {package} in the graph"


def test_no_bare_room_imports() -> None:
    """``import judge`` would pick up a user's own judge.py: every import names ``bilevel.``."""
    tests = sorted(p for p in (ROOT / "tests").rglob("*.py") if "corpus" not in p.parts) + sorted((ROOT / "bench").glob("*.py"))
    for path in _sources() + tests:
        bare = [n for n in _imports(path) if n.split(".")[0] in ORDER]
        assert not bare, f"{path.relative_to(ROOT)} imports {bare} by bare name; use bilevel.{bare[0]}"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["bilevel", *parts])


def test_no_import_cycles() -> None:
    """Module-level imports between bilevel's modules form no cycle."""
    graph: dict[str, set[str]] = {}
    names = {_module_name(p): p for p in _sources()}
    for name, path in names.items():
        imported = set(_imports(path))
        # ``from pkg import sub`` imports the submodule, not the package's contents: count the package
        # only when no submodule of it is named.
        graph[name] = {n for n in imported if n in names and n != name
                       and not any(m.startswith(n + ".") and m in names for m in imported)}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from bilevel.runs.cli import main\nimport bilevel.judge.stats\nimport judge\n")
    assert _rooms(bad) == {"runs", "judge"}
    assert "judge" in _imports(bad)


def test_tests_mirror_the_packages() -> None:
    """Tests live in tests/<room>/ (plus package/ for the whole, bench/ for bench/), never loose."""
    loose = sorted(p.name for p in (ROOT / "tests").glob("test_*.py"))
    assert not loose, f"tests outside a room's folder: {loose}"
    folders = {p.parent.name for p in (ROOT / "tests").glob("*/test_*.py")}
    assert folders <= set(ORDER) | {"package", "bench"}, sorted(folders - set(ORDER))
