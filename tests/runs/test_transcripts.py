"""``bilevel transcripts RUN [--level] [--call N] [--json]`` on a scripted run (issue 12, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bilevel.runs.cli import main
from bilevel.runs.store import Store

TINY = (Path(__file__).parent.parent / "data" / "tiny.toml").read_text()


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One generation with the scripted model in both loops; the author's answers cut at 60 tokens when longer."""
    d = tmp_path_factory.mktemp("transcripts")
    spec = d / "spec.toml"
    spec.write_text(TINY.replace("generations = 2", "generations = 1") + "\n[llm]\nauthor_answer_tokens = 60\n")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", "--spec", str(spec), "--store", str(d / "store"), "--model", "scripted:demo"]) == 0
    return d / "store", out.getvalue().splitlines()[0].split(": ", 1)[1]


def test_transcripts_list_every_call_readably(scripted_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    store_dir, run_id = scripted_run
    calls = Store.in_dir(store_dir).llm_calls(run_id)
    assert main(["transcripts", run_id, "--store", str(store_dir)]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("=== call ")]
    assert len(headers) == len(calls) > 0
    assert headers[0].startswith("=== call 1 | ")
    inner = next(h for h in headers if " | inner | " in h)
    assert " | scripted:demo | " in inner and " tokens in, " in inner and "truncated: no" in inner
    assert " | g0 | " in inner or " | final | " in inner
    assert "--- system ---" in out and "--- user ---" in out and "--- answer ---" in out
    assert calls[0]["response"].splitlines()[0] in out  # the answer's text itself


def test_level_call_and_json(scripted_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    store_dir, run_id = scripted_run
    calls = Store.in_dir(store_dir).llm_calls(run_id)
    assert main(["transcripts", run_id, "--level", "author", "--json", "--store", str(store_dir)]) == 0
    authors = json.loads(capsys.readouterr().out)
    assert [a["call"] for a in authors] == [n for n, c in enumerate(calls, 1) if c["level"] == "author"]
    assert all(a["level"] == "author" and a["generation"] == "g0" for a in authors)
    cut = [a for a in authors if a["truncated"]]
    assert cut and all(a["tokens_out"] == 60 for a in cut)  # the scripted model cut long answers at 60 tokens
    assert any(not a["truncated"] for a in authors)
    assert authors[0]["messages"][0][0] == "user" and "Write candidate 1 of generation 0" in authors[0]["messages"][0][1]

    n = cut[0]["call"]
    assert main(["transcripts", run_id, "--call", str(n), "--store", str(store_dir)]) == 0
    one = capsys.readouterr().out
    assert one.count("=== call ") == 1 and f"=== call {n} | author | g0 | " in one
    assert "truncated: yes (answer truncated at 60 tokens)" in one

    assert main(["transcripts", run_id, "--level", "inner", "--json", "--store", str(store_dir)]) == 0
    inner = json.loads(capsys.readouterr().out)
    assert len(inner) + len(authors) == len(calls)
    assert {i["generation"] for i in inner} <= {"g0", "final"} and "final" in {i["generation"] for i in inner}
    assert all(" panel, " in i["where"] for i in inner)


def test_bad_input_is_refused_with_what_is_there(scripted_run: tuple[Path, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    store_dir, run_id = scripted_run
    n = len(Store.in_dir(store_dir).llm_calls(run_id))
    assert main(["transcripts", run_id, "--call", str(n + 1), "--store", str(store_dir)]) == 2
    assert f"has {n} recorded model calls (1..{n})" in capsys.readouterr().err
    assert main(["transcripts", "no-such-run", "--store", str(store_dir)]) == 2
    assert "no-such-run" in capsys.readouterr().err
