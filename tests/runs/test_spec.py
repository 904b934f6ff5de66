from __future__ import annotations

from pathlib import Path

import pytest

from bilevel.runs.spec import DEFAULTS, SpecError, load_spec


def test_defaults_load() -> None:
    spec = load_spec()
    assert spec["run"]["benchmark"] == "bbob"
    assert spec["inner"]["budget"] == DEFAULTS["inner"]["budget"]


def test_file_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "spec.toml"
    f.write_text('[run]\ngenerations = 5\nseed = 3\n[inner]\nbudget = 20\n[benchmark]\ndimensions = [2]\n')
    spec = load_spec(f, {"run": {"seed": 9}})
    assert spec["run"]["generations"] == 5
    assert spec["run"]["seed"] == 9
    assert spec["inner"]["budget"] == 20
    assert spec["benchmark"] == {"dimensions": [2]}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[runn]\nseed = 1\n", "unknown section [runn]"),
        ("[run]\ngenrations = 1\n", "unknown key 'genrations' in [run]"),
        ("[run]\ngenerations = 'three'\n", "[run] generations must be an integer"),
        ("[run]\ngenerations = 0\n", "generations must be at least 1"),
        ("[run\n", "not valid TOML"),
        ("[inner]\nstep_size = 2.0\n", "step_size must be in (0, 1]"),
        ('[inner]\nstrategy = "llm"\n', "[inner] strategy must be one of greedy, random, tpe, cmaes, qmc, "
         "optuna-random, got 'llm'; the model proposes in the inner loop when [llm] model is set"),
        ('[inner]\nstrategy = "bayes"\n', "[inner] strategy must be one of greedy, random"),
    ],
)
def test_malformed_specs_are_refused_with_a_clear_message(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(f)
    assert needle in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")
