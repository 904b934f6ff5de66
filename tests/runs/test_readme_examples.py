"""The README's examples run as written (issue 13): the command and python benchmarks with their scripts,
the spec file example loads, and the documented commands exist."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from bilevel.runs.cli import _parser, main
from bilevel.runs.spec import load_spec

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block of the README."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", README.read_text(), re.S)]


def _named(first_line: str) -> str:
    """The block whose first line is ``first_line`` (the README names example files that way)."""
    hits = [text for _lang, text in _blocks() if text.splitlines()[0].startswith(first_line)]
    assert len(hits) == 1, f"the README should have one block starting {first_line!r}"
    return hits[0]


@pytest.mark.parametrize("files, spec", [
    ({"train.py": "# train.py", "spec.toml": "# spec.toml"}, "spec.toml"),
    ({"bench.py": "# bench.py", "spec_py.toml": "# spec_py.toml"}, "spec_py.toml"),
])
def test_own_benchmark_examples_run_as_written(tmp_path: Path, files: dict[str, str], spec: str,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for name, first in files.items():
        (tmp_path / name).write_text(_named(first), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--spec", spec, "--store", "runs"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "stopped: completed" in out and "failed_trials: 0 of " in out


def test_spec_file_example_loads() -> None:
    block = next(text for lang, text in _blocks() if lang == "toml" and text.startswith("[run]\nbenchmark = \"bbob\""))
    spec = load_spec(None, tomllib.loads(block), source="README.md")
    assert spec["run"]["generations"] == 4 and spec["benchmark"]["dimensions"] == [2, 5]


def test_every_documented_command_and_flag_exists() -> None:
    ap = _parser()
    sub = next(a for a in ap._actions if a.__class__.__name__ == "_SubParsersAction")
    text = README.read_text()
    lines = [line for lang, block in _blocks() if lang == "" for line in block.splitlines()
             if line.startswith("bilevel ")]
    assert len(lines) > 15
    for line in lines:
        words = shlex.split(line.split("#")[0].replace("[", " ").replace("]", " ").replace("|", " "))
        command = words[1]
        assert command in sub.choices, f"README documents `bilevel {command}`, which does not exist"
        options = sub.choices[command]._option_string_actions
        for flag in (w.split("=")[0] for w in words[2:] if w.startswith("--")):
            assert flag in options, f"README documents `bilevel {command} {flag}`, which does not exist"
    assert "bilevel judge FILE..." in text and "bilevel best RUN" in text
