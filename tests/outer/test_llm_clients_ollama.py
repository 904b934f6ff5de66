"""Ollama through the official client (issue 12, item 3): num_ctx from the prompt and the answer with the
model's context length (``/api/show``) as the ceiling, a clear error when the prompt cannot fit,
``format="json"`` for the proposer and ``keep_alive`` on every call. The loopback server drops the start of a
prompt longer than the request's window, as Ollama does, and notes it."""

from __future__ import annotations

from pathlib import Path

import ollama
import pytest
from llm_servers import OllamaServer

from bilevel.inner.chat import Caller, ChatConfigError, ChatRequest, ChatSettings
from bilevel.outer.llm import model_ref
from bilevel.outer.llm.ollama_backend import context_window
from bilevel.outer.llm.scripted import AUTHOR_MARK
from bilevel.runs.cli import main
from bilevel.runs.store import Store

SETTINGS = ChatSettings(retries=0, timeout_s=10.0, max_tokens=2048)
AUTHOR_SYSTEM = f"You are the {AUTHOR_MARK} of a bilevel search engine."
LONG_AUTHOR_PROMPT = "Write candidate 1 of generation 0.\n" + "The inner loop's source, line after line. " * 800
TINY = (Path(__file__).parent.parent / "data" / "tiny.toml").read_text()


def test_without_num_ctx_the_server_drops_the_prompt_start_as_ollama_does() -> None:
    with OllamaServer() as server:  # the raw client, no num_ctx: what the backend sent before
        ollama.Client(host=server.url).chat(model="qwen2.5:7b", messages=[
            {"role": "system", "content": AUTHOR_SYSTEM}, {"role": "user", "content": LONG_AUTHOR_PROMPT}])
    assert any("its start was dropped" in v for v in server.violations)


def test_num_ctx_holds_the_prompt_and_the_answer_under_the_models_context_length(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with OllamaServer(context_length=16384) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        ref = model_ref("ollama:qwen2.5:7b", SETTINGS, options={"keep_alive": "45m"})
        caller = Caller(ref)
        author = caller.ask(ChatRequest(AUTHOR_SYSTEM, (("user", LONG_AUTHOR_PROMPT),), "author", "g0:c0:r0"))
        inner = caller.ask(ChatRequest("You propose.", (("user", "Search space: []"),), "inner", "t1"))
    assert not author.error and not inner.error
    assert "```python" in author.response  # the model saw the author's system prompt: nothing was dropped
    assert server.violations == []
    assert len(server.shows) == 1 and server.shows[0]["model"] == "qwen2.5:7b"  # asked once per model
    first, second = server.requests
    prompt_tokens = server.tokens(AUTHOR_SYSTEM) + server.tokens(LONG_AUTHOR_PROMPT)
    assert prompt_tokens + 2048 <= first["options"]["num_ctx"] <= 16384
    assert first["options"]["num_predict"] == 2048
    assert second["options"]["num_ctx"] == 4096  # a short proposer prompt: a small window
    assert first["keep_alive"] == second["keep_alive"] == "45m"
    assert second["format"] == "json" and "format" not in first  # JSON for the proposer only


def test_a_prompt_that_cannot_fit_is_refused_with_what_to_change(monkeypatch: pytest.MonkeyPatch) -> None:
    with OllamaServer(context_length=2048) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        caller = Caller(model_ref("ollama:qwen2.5:7b", SETTINGS))
        with pytest.raises(ChatConfigError, match=r"context length is 2048 \(ollama /api/show\): use a model "
                                                  r"with a longer context window.*\[llm\] author_answer_tokens"):
            caller.ask(ChatRequest(AUTHOR_SYSTEM, (("user", LONG_AUTHOR_PROMPT),), "author", "g0:c0:r0"))
    assert server.requests == []  # nothing was sent to be cut


def test_context_window_rounds_up_and_caps() -> None:
    assert context_window(100, 2, 256, None) == 2048
    assert context_window(25_000, 2, 8192, None) == 32768  # 10,000 + 64 prompt tokens + 8,192
    assert context_window(25_000, 2, 8192, 24_000) == 24_000
    with pytest.raises(ChatConfigError, match="about 10064 tokens"):
        context_window(25_000, 2, 8192, 8192)


@pytest.mark.slow
def test_a_whole_run_through_ollama_sends_every_prompt_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY.replace("generations = 2", "generations = 1") + '\n[llm]\nkeep_alive = "2h"\n')
    with OllamaServer(context_length=32768, known_model="qwen2.5:7b") as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        assert main(["run", "--spec", str(spec), "--store", str(tmp_path / "s"), "--model", "ollama:qwen2.5:7b"]) == 0
    out = capsys.readouterr().out
    assert "stopped: completed" in out
    assert server.violations == []
    chats = [r for r in server.requests if "messages" in r]
    authors = [r for r in chats if AUTHOR_MARK in r["messages"][0]["content"]]
    assert authors and len(authors) < len(chats)
    assert all(r["keep_alive"] == "2h" and r["options"]["num_ctx"] >= 2048 for r in chats)
    assert all(r.get("format") == "json" for r in chats if r not in authors)
    assert all("format" not in r and r["options"]["num_ctx"] >= 16384 for r in authors)
    run_id = out.splitlines()[0].split(": ", 1)[1]
    assert Store.in_dir(tmp_path / "s").run(run_id).spec["llm"]["keep_alive"] == "2h"
