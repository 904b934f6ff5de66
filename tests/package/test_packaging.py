"""One distribution package: bilevel.<room> is the top-level folder <room>, and nothing else installs.

The wheel is built for real (``pip wheel``) and its file list read: only ``bilevel/`` and the
dist-info; built-in mechanisms and prompts ship. From a folder outside the checkout, ``import
bilevel`` works, ``import judge`` does not, and a user's own ``judge.py`` changes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ["inner", "outer", "mechanisms", "sandbox", "judge", "runs"]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_room_maps_and_links_to_its_folder() -> None:
    setup = _pyproject()["tool"]["setuptools"]
    for room in ROOMS:
        assert setup["package-dir"][f"bilevel.{room}"] == room
        link = ROOT / "bilevel" / room
        assert link.is_symlink() and link.resolve() == (ROOT / room).resolve(), f"bilevel/{room} must link to {room}/"


def test_every_subpackage_is_listed() -> None:
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {"bilevel"}
    for room in ROOMS:
        for init in (ROOT / room).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            found.add(".".join(["bilevel", *rel.parts]))
    data = set(_pyproject()["tool"]["setuptools"]["package-data"])  # data folders (no __init__.py) are listed too
    found |= data
    assert data <= listed
    assert found == listed, f"pyproject [tool.setuptools] packages: missing {sorted(found - listed)}, extra {sorted(listed - found)}"


@pytest.mark.slow
def test_wheel_installs_only_bilevel(tmp_path: Path) -> None:
    out = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, env={**os.environ, "PIP_NO_INDEX": "1"})
    (wheel,) = out.glob("bilevel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"bilevel"}
    assert "bilevel/mechanisms/builtin/tabu.py" in names
    assert "bilevel/inner/prompts/proposer_v1.txt" in names
    assert "bilevel/judge/benchmarks/bbob.py" in names


def test_import_from_outside_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "judge.py").write_text("raise SystemExit('the user judge.py was imported by bilevel')\n")
    (tmp_path / "script.py").write_text(
        "import importlib.util, bilevel\n"
        "from bilevel import StackSampler\n"
        "import bilevel.judge.decision\n"
        "assert bilevel.__version__\n"
        "for bare in ('inner', 'outer', 'sandbox', 'runs', 'mechanisms'):\n"
        "    assert importlib.util.find_spec(bare) is None, bare\n"
        "print('ok', StackSampler.__module__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok bilevel.runs.optuna_sampler"
    bare = subprocess.run([sys.executable, "-c", "import sys; sys.path.remove(''); import judge"], cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    assert bare.returncode != 0 and "No module named 'judge'" in bare.stderr
