"""Full bilevel runs with a model: through the real SDKs on loopback servers, replay, caps and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llm_servers import AnthropicServer, OllamaServer

import bilevel.inner.llm_proposer
from bilevel.inner.chat import ChatSettings
from bilevel.runs.cli import main
from bilevel.runs.store import Store

TINY = (Path(__file__).parent.parent / "data" / "tiny.toml").read_text()


def _spec(tmp_path: Path, extra: str = "") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "spec.toml"
    path.write_text(TINY + "\n[llm]\nbackoff_s = 0.001\n" + extra)
    return path


def _summary(out: str) -> dict[str, str]:
    block = out.split("--- summary ---", 1)[1]
    return dict(line.split(": ", 1) for line in block.strip().splitlines())


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str, extra: str = "") -> dict[str, str]:
    assert main(["run", "--spec", str(_spec(tmp_path, extra)), "--store", str(tmp_path / "store"), *args]) == 0
    return _summary(capsys.readouterr().out)


def _check_bilevel_run(store: Store, run_id: str) -> dict[str, Any]:
    """What every model-driven run must show: an LLM mechanism judged on its merits, calls of both levels."""
    cands = store.candidates(run_id)
    verdicts = {(v["generation"], v["index"]): v for v in store.verdicts(run_id)}
    tabu = [c for c in cands if c["author"] == "llm" and "tabu" in c["operation"]]
    assert tabu, [c["operation"] for c in cands]
    v = verdicts[(tabu[0]["generation"], tabu[0]["index"])]
    assert v["stage"] in ("stage1", "full", "confirmation") and v["reason"].startswith(("kept", "rejected", "not confirmed"))
    calls = store.llm_calls(run_id)
    author = [c for c in calls if c["level"] == "author"]
    repair = next(c for c in author if c["context"] == "g0:c0:r1")
    assert "The sandbox check failed: policy_violation" in repair["messages"][-1][1]
    assert "def _iterate(self, t: int) -> Trial:" in author[0]["messages"][0][1]  # the inner loop's real source
    assert "class Hook(StrEnum)" in author[0]["messages"][0][1]  # the contract
    assert author[0]["prompt_version"].startswith("author_v2@")
    inner = [c for c in calls if c["level"] == "inner"]
    assert all(c["prompt_version"].startswith("proposer_batch_v1@") for c in inner)  # 8 proposals per call
    outcomes = {c["outcome"].split(":")[0] for c in inner}
    assert {"accepted", "rejected"} <= outcomes, outcomes
    sources = {t["source"] for e in store.evaluations(run_id) if e["result"].get("trace")
               for t in e["result"]["trace"]["trials"]}
    assert {"base:llm", "base:llm-fallback"} <= sources
    return store.ledger(run_id)


@pytest.mark.slow
def test_full_run_through_the_anthropic_sdk(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with AnthropicServer(faults=[429, 529]) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        summary = _run(tmp_path, capsys, "--model", "anthropic:claude-sonnet-test")
    assert summary["author"] == "llm" and summary["stopped"] == "completed"
    store = Store.in_dir(tmp_path / "store")
    ledger = _check_bilevel_run(store, summary["run"])
    assert sum(lv["tokens_in"] for lv in ledger.values()) == server.usage["in"]
    assert sum(lv["tokens_out"] for lv in ledger.values()) == server.usage["out"]
    assert sum(lv["calls"] for lv in ledger.values()) == len(server.requests) - 2  # two faults were retried
    author = ledger["author"]
    assert author["cache_read"] > 0 and author["cache_write"] > 0  # the static prefix is cached across calls
    assert sum(lv["cache_read"] for lv in ledger.values()) == server.usage["cache_read"]
    assert author["cost_usd"] == pytest.approx((author["tokens_in"] * 3 + author["tokens_out"] * 15
                                                + author["cache_write"] * 3.75 + author["cache_read"] * 0.3) / 1e6)
    assert main(["show", summary["run"], "--store", str(tmp_path / "store")]) == 0
    shown = capsys.readouterr().out
    assert "model: anthropic:claude-sonnet-test" in shown and f"{ledger['author']['tokens_in']} tokens in" in shown


@pytest.mark.slow
def test_full_run_through_the_ollama_client_streaming(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with OllamaServer(faults=[503]) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        summary = _run(tmp_path, capsys, "--model", "ollama:qwen2.5:7b", extra="stream = true\n")
    assert summary["stopped"] == "completed"
    assert all(r["stream"] is True and r["model"] == "qwen2.5:7b" for r in server.requests)
    ledger = _check_bilevel_run(Store.in_dir(tmp_path / "store"), summary["run"])
    assert sum(lv["tokens_in"] for lv in ledger.values()) == server.usage["in"]


@pytest.mark.slow
def test_replay_reproduces_verdicts_and_scores_and_names_divergence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _run(tmp_path, capsys, "--model", "scripted:demo")
    store_dir = str(tmp_path / "store")
    assert main(["replay", summary["run"], "--store", store_dir]) == 0
    out = capsys.readouterr().out
    assert "replay: identical" in out, out
    store = Store.in_dir(tmp_path / "store")
    replay_id = out.splitlines()[0].split(": ", 1)[1]
    assert [(v["stack_key"], v["keep"], v["mean_improvement"]) for v in store.verdicts(replay_id)] == \
           [(v["stack_key"], v["keep"], v["mean_improvement"]) for v in store.verdicts(summary["run"])]
    assert store.ledger(replay_id)["inner"]["calls"] == store.ledger(summary["run"])["inner"]["calls"]
    assert all(c["replayed"] for c in store.llm_calls(replay_id))

    original = bilevel.inner.llm_proposer.prompt_texts

    def bolder(*args: str) -> tuple[str, str, str]:
        system, user, digest = original(*args)
        return system + "Be bold.\n", user, digest

    monkeypatch.setattr(bilevel.inner.llm_proposer, "prompt_texts", bolder)
    assert main(["replay", summary["run"], "--store", store_dir]) == 1
    out = capsys.readouterr().out
    assert "replay: diverged" in out and "differs from the recorded one" in out and "+Be bold." in out


@pytest.mark.slow
def test_caps_stop_cleanly_and_resume_loses_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = _run(tmp_path / "ref", capsys, "--model", "scripted:demo")
    capped = _run(tmp_path, capsys, "--model", "scripted:demo", extra="author_max_tokens = 8000\n")
    assert capped["stopped"].startswith("author token cap of 8000 reached"), capped["stopped"]
    store = Store.in_dir(tmp_path / "store")
    assert any("author token cap" in e["reason"] for e in store.events(capped["run"], "budget_stop"))
    assert main(["resume", capped["run"], "--store", str(tmp_path / "store"), "--cap", "author_max_tokens=0"]) == 0
    resumed = _summary(capsys.readouterr().out)
    for key in ("generations", "candidates", "kept", "stack", "val_improvement", "test_improvement"):
        assert resumed[key] == reference[key], key
    ref_store = Store.in_dir(tmp_path / "ref" / "store")
    assert store.ledger(capped["run"])["author"]["calls"] == ref_store.ledger(reference["run"])["author"]["calls"]
    assert main(["resume", capped["run"], "--store", str(tmp_path / "store"), "--cap", "nope=1"]) == 2
    assert "--cap 'nope=1'" in capsys.readouterr().err

    inner_capped = _run(tmp_path / "inner", capsys, "--model", "scripted:demo", extra="inner_max_tokens = 100\n")
    assert inner_capped["stopped"].startswith("inner token cap of 100 reached")
    assert inner_capped["generations"] == "0"


def test_model_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = str(tmp_path / "store")
    assert main(["run", "--author", "llm", "--store", store]) == 2
    assert "needs a model: --model backend:model" in capsys.readouterr().err
    assert main(["run", "--model", "gpt5", "--store", store]) == 2
    assert "is not backend:model" in capsys.readouterr().err
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["run", "--model", "anthropic:claude-x", "--store", store]) == 2
    assert "set ANTHROPIC_API_KEY" in capsys.readouterr().err
    assert not (tmp_path / "store" / "bilevel.sqlite").exists() or not Store.in_dir(tmp_path / "store").run_ids()


def test_one_setting_drives_both_loops_unless_an_ablation_says_otherwise() -> None:
    from bilevel.runs.llm_setup import author_model, inner_model
    from bilevel.runs.spec import SpecError, load_spec

    same = load_spec(None, {"run": {"author": "llm"}, "llm": {"model": "ollama:qwen2.5:7b", "temperature": 0.3}})
    inner_ref, author_ref = inner_model(same), author_model(same)
    assert inner_ref is not None and author_ref is not None
    assert inner_ref.spec == author_ref.spec and inner_ref.settings.temperature == 0.3
    # Each level has its own call settings: the author gets room and time for a long mechanism answer.
    assert (inner_ref.settings.max_tokens, inner_ref.settings.timeout_s) == (1024, 120.0)
    assert (author_ref.settings.max_tokens, author_ref.settings.timeout_s) == (8192, 600.0)
    tuned = load_spec(None, {"llm": {"model": "ollama:q", "author_answer_tokens": 4000, "author_temperature": 0.7}})
    assert getattr(author_model(tuned), "settings", None) == ChatSettings(temperature=0.7, max_tokens=4000,
                                                                          timeout_s=600.0)
    with pytest.raises(SpecError, match="author_answer_tokens"):
        load_spec(None, {"llm": {"model": "ollama:q", "author_answer_tokens": 0}})
    ablation = load_spec(None, {"llm": {"model": "ollama:qwen2.5:7b", "author_model": "anthropic:claude-x"}})
    assert getattr(author_model(ablation), "spec", "") == "anthropic:claude-x"
    assert getattr(inner_model(ablation), "spec", "") == "ollama:qwen2.5:7b"
    assert getattr(author_model(ablation), "prices", ()) == (3.0, 15.0)
    with pytest.raises(SpecError, match="author_model"):
        load_spec(None, {"llm": {"author_model": "anthropic:claude-x"}})


@pytest.mark.slow
def test_a_server_that_goes_down_stops_the_run_cleanly_and_resume_ends_where_it_would(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with OllamaServer() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        reference = _run(tmp_path / "whole", capsys, "--model", "ollama:qwen2.5:7b")
    store_dir = tmp_path / "broken" / "store"
    with OllamaServer(faults=[None] * 60 + [503] * 10_000) as down:  # answers 60 calls, then is busy for good
        monkeypatch.setenv("OLLAMA_HOST", down.url)
        code = main(["run", "--spec", str(_spec(tmp_path / "broken")), "--store", str(store_dir),
                     "--model", "ollama:qwen2.5:7b"])
    captured = capsys.readouterr()
    assert code == 2
    assert "still failing after 3 retries" in captured.err and "bilevel resume" in captured.err
    run_id = captured.out.splitlines()[0].split(": ", 1)[1]
    assert Store.in_dir(store_dir).events(run_id, "run_end") == []
    with OllamaServer() as back:
        monkeypatch.setenv("OLLAMA_HOST", back.url)
        assert main(["resume", run_id, "--store", str(store_dir)]) == 0
    resumed = _summary(capsys.readouterr().out)
    for key in ("generations", "candidates", "kept", "stack", "val_improvement", "val_ci", "test_improvement",
                "test_ci"):
        assert resumed[key] == reference[key], key
