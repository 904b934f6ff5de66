"""docs/author_prompt.md is the default run's author prompt as the code builds it today."""

from __future__ import annotations

from pathlib import Path

import pytest

from bilevel.runs.author_prompt import author_request, main, markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "author_prompt.md"


def test_the_committed_author_prompt_is_current() -> None:
    system, user = author_request()
    assert DOC.read_text(encoding="utf-8") == markdown(system, user), (
        "docs/author_prompt.md is stale: python -m bilevel.runs.author_prompt > docs/author_prompt.md")
    for header in ("## The benchmark and the budget", "## spacekit", "## The sandbox's rules", "## Limits",
                   "## The base proposer", "## What your hooks receive", "## The conformance check"):
        assert header in system
    assert "## The inner loop (inner/loop.py" in user and "per group (mean score on the search panel" in user
    assert "benchmark: bbob; its score: log10 regret" in system and "budget of 60 trials" in system


def test_the_script_prints_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == DOC.read_text(encoding="utf-8")
