"""What a run with a model costs: the ledger counts every token at its price, and a resumed run pays nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_servers import AnthropicServer

from bilevel.inner.chat import Caller, ChatRequest, ChatSettings
from bilevel.outer.llm import model_ref
from bilevel.outer.llm.scripted import AUTHOR_MARK
from bilevel.runs.cli import main
from bilevel.runs.ledger import ledger
from bilevel.runs.llm_setup import ledger_lines
from bilevel.runs.store import RunRecorder, Store

TINY = (Path(__file__).parent.parent / "data" / "tiny.toml").read_text()
SYSTEM = "You propose. " + "word " * 1198  # 1,200 tokens (the loopback server counts words): cacheable


def test_ledger_counts_input_output_and_cache_tokens_at_their_prices(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.in_dir(tmp_path)
    store.create_run("r1", {}, {}, "h")
    recorder = RunRecorder(store, "r1")
    answers = [" ".join(["out"] * 10), " ".join(["out"] * 10)]
    with AnthropicServer(canned=answers) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        ref = model_ref("anthropic:claude-sonnet-test", ChatSettings(max_tokens=100, retries=0))
        assert ref.prices == (3.0, 15.0)
        caller = Caller(ref, sink=lambda rec: recorder.record_llm_call(rec.to_json()))
        first = caller.ask(ChatRequest(SYSTEM, (("user", "one two three four five"),), "inner", "t0"))
        second = caller.ask(ChatRequest(SYSTEM, (("user", "one two three four five six seven"),), "inner", "t1"))
    # First call: the system prompt is written to the cache; the second reads it back.
    assert (first.tokens_in, first.tokens_out, first.cache_write_tokens, first.cache_read_tokens) == (5, 10, 1200, 0)
    assert (second.tokens_in, second.tokens_out, second.cache_write_tokens, second.cache_read_tokens) == (7, 10, 0, 1200)
    assert first.cost_usd == pytest.approx((5 * 3 + 10 * 15 + 1200 * 3 * 1.25) / 1e6)
    assert second.cost_usd == pytest.approx((7 * 3 + 10 * 15 + 1200 * 3 * 0.1) / 1e6)
    summed = store.ledger("r1")["inner"]
    assert (summed["calls"], summed["tokens_in"], summed["tokens_out"]) == (2, 12, 20)
    assert (summed["cache_write"], summed["cache_read"]) == (1200, 1200)
    assert summed["cost_usd"] == pytest.approx(0.005196)  # (12*3 + 20*15 + 1200*3.75 + 1200*0.3) / 1e6
    whole = ledger(store, "r1")
    assert whole.levels["inner"] == (2, 12 + 20 + 1200 + 1200, pytest.approx(0.005196))
    assert whole.tokens == 2432 and whole.dollars == pytest.approx(0.005196)
    line = ledger_lines(store.ledger("r1"), {"llm": {"model": ref.spec}})[1]
    assert line.startswith("inner: 2 calls (0 failed), 12 tokens in, 20 out, cache 1200 written, 1200 read, $0.0052")


@pytest.mark.slow
def test_a_resumed_run_does_not_ask_the_model_again_for_recorded_author_calls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY + "\n[llm]\nbackoff_s = 0.001\nauthor_max_tokens = 3000\n")
    store_dir = str(tmp_path / "store")
    with AnthropicServer() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        assert main(["run", "--spec", str(spec), "--store", store_dir, "--model", "anthropic:claude-sonnet-t"]) == 0
        out = capsys.readouterr().out
        run_id = out.splitlines()[0].split(": ", 1)[1]
        assert "stopped: author token cap of 3000 reached" in out, out
        asked_before = sum(AUTHOR_MARK in str(r.get("system")) for r in server.requests)
        store = Store.in_dir(tmp_path / "store")
        recorded_before = len(store.llm_calls(run_id, "author"))
        assert 0 < recorded_before == asked_before
        assert main(["resume", run_id, "--store", store_dir, "--cap", "author_max_tokens=0"]) == 0
        assert "stopped: completed" in capsys.readouterr().out
        asked = sum(AUTHOR_MARK in str(r.get("system")) for r in server.requests)
    recorded = len(store.llm_calls(run_id, "author"))
    assert recorded > recorded_before  # the resumed run went on writing mechanisms
    assert asked == recorded  # every author call was paid once: none recorded before was asked again
