"""A kept stack as an OptunaHub sampler package: the files, the front matter, and a study through optunahub."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from bilevel.judge.stack import Mechanism, Stack
from bilevel.mechanisms.library import load_source
from bilevel.runs.export_optunahub import CLASS_NAME, write_optunahub_package

optunahub = pytest.importorskip("optunahub")

STACK = Stack(tuple(Mechanism(n, load_source(n)) for n in ("tabu", "lhs_design")))


def _front_matter(readme: str) -> dict[str, str]:
    assert readme.startswith("---\n"), "README.md must open with YAML front matter"
    block = readme.split("---\n")[1]
    return dict(line.split(": ", 1) for line in block.strip().splitlines())


def test_package_files_front_matter_and_a_study(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    pkg = write_optunahub_package(STACK, root / "samplers" / "my_stack", "run-x", budget=20)
    names = {p.name for p in pkg.iterdir()}
    assert {"README.md", "__init__.py", "example.py", "requirements.txt", "LICENSE", "stack.json"} <= names
    meta = _front_matter((pkg / "README.md").read_text())
    assert set(meta) == {"author", "title", "description", "tags", "optuna_versions", "license"}
    assert "sampler" in meta["tags"] and optuna.__version__ in meta["optuna_versions"]
    assert meta["license"] == "MIT License"
    reqs = (pkg / "requirements.txt").read_text().split()
    assert "bilevel" in reqs and any(r.startswith("optuna") for r in reqs)
    assert json.loads((pkg / "stack.json").read_text())["budget"] == 20

    module = optunahub.load_local_module(package="samplers/my_stack", registry_root=str(root))
    sampler = getattr(module, CLASS_NAME)()  # no arguments: the stack comes from the package
    assert sampler.budget == 20 and len(sampler.stack.mechanisms) == 2
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2 + t.suggest_float("y", -5, 5) ** 2,
                   n_trials=15)
    sources = sampler.proposal_sources()
    sampler.close()
    assert len(study.trials) == 15 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert sum(sources.values()) == 14  # every trial after the first was proposed through the stack
    assert sources.get(STACK.mechanisms[1].id, 0) >= 3, sources  # the design mechanism ran in the sandbox
    seeded = getattr(module, CLASS_NAME)(seed=3)
    assert seeded.seed == 3
    seeded.close()


def test_refuses_a_file_as_directory(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="give a directory"):
        write_optunahub_package(STACK, f)
