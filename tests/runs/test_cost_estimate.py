"""The estimate before a run with a priced model, and the $5 refusal (issue 12, item 1).

Through the loopback Messages API server and the real ``anthropic`` client: a
priced spec over $5 with no dollar cap is refused (exit 2, no store); the same
spec with a cap or ``--yes`` runs; the estimate printed before the run is
compared with the ledger the run recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_servers import AnthropicServer, realistic_script, realistic_tokens

from bilevel.runs.cli import main
from bilevel.runs.driver import author_brief, first_search_space, inner_settings, judge_setup
from bilevel.runs.estimate import estimate
from bilevel.runs.spec import load_spec
from bilevel.runs.store import Store

TINY = (Path(__file__).parent.parent / "data" / "tiny.toml").read_text()
MODEL = "anthropic:claude-sonnet-test"
# 100x Sonnet's prices: the tiny run (well under $1 at Sonnet prices) is estimated over $5
DEAR = '\n[llm]\nbackoff_s = 0.001\nprices = {"anthropic:" = [300.0, 1500.0]}\n'


def _spec(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(TINY + DEAR + extra)
    return path


def _server(monkeypatch: pytest.MonkeyPatch) -> AnthropicServer:
    """A fresh server (its own prompt cache) that counts tokens about as a real tokenizer does and answers
    the author with mechanisms of a real answer's size."""
    srv = AnthropicServer(tokens=realistic_tokens, script=realistic_script())
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
    return srv


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    with _server(monkeypatch) as srv:
        yield srv


def test_a_priced_run_over_five_dollars_without_a_cap_is_refused_and_records_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], server: AnthropicServer) -> None:
    store = tmp_path / "store"
    code = main(["run", "--spec", str(_spec(tmp_path)), "--store", str(store), "--model", MODEL])
    captured = capsys.readouterr()
    assert code == 2
    assert "inner per generation:" in captured.err and "author per generation:" in captured.err
    assert "error: this run is estimated at $" in captured.err
    for words in ("inner_max_usd", "author_max_usd", "--yes", "nothing was recorded"):
        assert words in captured.err
    assert not store.exists() and captured.out == ""
    assert server.requests == []  # not one model call


def test_a_cap_on_one_level_does_not_excuse_the_other(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      server: AnthropicServer) -> None:
    spec = _spec(tmp_path, "author_max_usd = 1.0\n")
    assert main(["run", "--spec", str(spec), "--store", str(tmp_path / "s"), "--model", MODEL]) == 2
    err = capsys.readouterr().err
    assert "(inner $" in err and "with no dollar cap" in err and "author $" not in err.split("error:")[1]


@pytest.mark.slow
def test_with_a_cap_or_yes_the_run_goes_ahead_and_the_estimate_bounds_the_ledger(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    capped = _spec(tmp_path, "inner_max_usd = 1000.0\nauthor_max_usd = 1000.0\n")
    with _server(monkeypatch):
        assert main(["run", "--spec", str(capped), "--store", str(tmp_path / "a"), "--model", MODEL]) == 0
    out = capsys.readouterr()
    assert "stopped: completed" in out.out and "capped: inner_max_usd = 1000" in out.err

    spec_path = _spec(tmp_path)
    with _server(monkeypatch):  # a cold prompt cache, as a first run has
        assert main(["run", "--spec", str(spec_path), "--store", str(tmp_path / "b"), "--model", MODEL,
                     "--yes"]) == 0
    out = capsys.readouterr()
    assert "--yes: going ahead" in out.err and "stopped: completed" in out.out
    run_id = out.out.splitlines()[0].split(": ", 1)[1]
    used = Store.in_dir(tmp_path / "b").ledger(run_id)

    spec = load_spec(spec_path, {"llm": {"model": MODEL}, "run": {"author": "llm"}})
    setup = judge_setup(spec)
    settings = inner_settings(spec)
    est = estimate(spec, first_search_space(setup), setup.panels, settings, author_brief(spec, setup, settings))
    assert est is not None
    gens = spec["run"]["generations"]
    inner_calls = est.inner.calls * gens + est.final.calls
    # The estimate assumes every candidate reaches the full validation panel, every author repair is used
    # and no proposer retry: calls and dollars measured must lie within a factor of 3 of it, either way.
    for level, calls, usd in (("inner", inner_calls, est.level_usd["inner"]),
                              ("author", est.author.calls * gens, est.level_usd["author"])):
        measured = used[level]
        assert calls / 3 <= measured["calls"] <= calls * 3, (level, calls, measured)
        assert usd / 3 <= measured["cost_usd"] <= usd * 3, (level, usd, measured)
    assert est.total_usd / 3 <= sum(v["cost_usd"] for v in used.values()) <= est.total_usd * 3
