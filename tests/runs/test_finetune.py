"""Issue 16's closed loop: a scripted multi-generation run exported as fine-tuning data, mlx-lm reads it,
a tiny model is LoRA-tuned on it, and one generation runs with the tuned author."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bilevel.mechanisms.library import load_source
from bilevel.runs.cli import main
from bilevel.runs.driver import judge_setup
from bilevel.runs.history import load_history
from bilevel.runs.store import Store

SPEC = Path(__file__).parent.parent / "data" / "finetune_small.toml"
# answers of the scripted author, in order; the third is refused by the sandbox and repaired by the next
ANSWERS = ["trust_region", "one_plus_one_es", None, "coord_step", "quad_surrogate", "ucb_bandit", "elite_crossover"]
BROKEN = "import os\n\ndef review(ctx, state, candidate):\n    return None\n"


def _script(tmp: Path) -> Path:
    path = tmp / "author.json"
    path.write_text(json.dumps({"author": [load_source(n) if n else BROKEN for n in ANSWERS]}))
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("ft")
    script = _script(tmp)
    for _ in range(2):
        assert main(["run", "--spec", str(SPEC), "--store", str(tmp / "store"), "--model", f"scripted:{script}"]) == 0
    return tmp / "store", Store.in_dir(tmp / "store").run_ids()


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_export_finetune_data_has_no_test_data_and_mlx_lm_reads_it(two_runs: tuple[Path, list[str]],
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    store, runs = two_runs
    out = tmp_path / "data"
    assert main(["export", *runs, "--store", str(store), "--finetune", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    db = Store.in_dir(store)
    assert [r["run"] for r in manifest["runs"]] == runs
    assert [r["manifest_hash"] for r in manifest["runs"]] == [db.run(r).manifest_hash for r in runs]
    assert manifest["split"] == {"unit": "run", "valid": [runs[1]]}  # split by run, never by line
    train, valid = _jsonl(out / "train.jsonl"), _jsonl(out / "valid.jsonl")
    assert manifest["counts"]["train"] == len(train) >= 1 and manifest["counts"]["valid"] == len(valid) >= 1
    kept = {(v["run"], v["generation"], v["candidate"]) for r in manifest["runs"] for v in r["verdicts"] if v["keep"]}
    assert len(kept) == len(train) + len(valid)  # one example per passed answer
    for ex in train + valid:
        roles = [m["role"] for m in ex["messages"]]  # type: ignore[index]
        assert set(ex) == {"messages"} and roles[0] == "system" and roles[-1] == "assistant" and "user" in roles
        assert "```python" in ex["messages"][-1]["content"]  # type: ignore[index]
    prefs = _jsonl(out / "preferences.jsonl")
    kinds = {p["kind"] for p in prefs}
    assert "repair" in kinds and all({"prompt", "chosen", "rejected", "margin"} <= set(p) for p in prefs)
    repairs = [p for p in prefs if p["kind"] == "repair"]  # a refused draft against the answer that passed
    assert all(p["rejected"] != p["chosen"] for p in repairs)
    assert any("import os" in p["rejected"][0]["content"] for p in repairs)  # type: ignore[index]
    proposer = _jsonl(out / "proposer.jsonl")
    assert proposer and all(str(p["reason"]).startswith("rejected") for p in proposer)
    assert manifest["excluded"]["test_panel_proposer_calls"] > 0  # the test panel's inner calls were left out

    text = "".join((out / f).read_text() for f in ("train.jsonl", "valid.jsonl", "preferences.jsonl",
                                                   "proposer.jsonl", "manifest.json"))
    for run_id in runs:
        for entry in judge_setup(load_history(db, run_id).spec).panels.test:
            assert entry.instance not in text, f"sealed test instance {entry.instance} leaked into the data"
        for ev in db.events(run_id, "summary"):
            assert f"{ev.get('test_improvement')!r}" not in text

    pytest.importorskip("mlx_lm")
    from mlx_lm.tuner.datasets import load_local_dataset
    from transformers import AutoTokenizer

    model = _tiny_model(tmp_path / "tiny")
    tok = AutoTokenizer.from_pretrained(str(model))
    sets = load_local_dataset(out, tok, type("C", (), {})())
    assert len(sets[0]) == len(train) and len(sets[1]) == len(valid)
    tokens, offset = sets[0].process(sets[0][0])
    assert len(tokens) > 100 and offset == 0

    adapter = tmp_path / "adapter"
    assert main(["tune", "--data", str(out), "--model", f"mlx:{model}", "--out", str(adapter), "--iters", "2",
                 "--max-seq-length", "128"]) == 0
    assert (adapter / "adapters.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    from bilevel.runs.finetune import adapter_hash

    digest = adapter_hash(adapter)
    # one generation with the tuned author (the inner proposer stays scripted: mlx on CPU is slow)
    script = _script(tmp_path)
    short = tmp_path / "short.toml"  # a few answer tokens and no repairs: mlx generation on CPU is slow
    short.write_text(SPEC.read_text() + "\n[llm]\nauthor_answer_tokens = 8\nauthor_repairs = 0\n")
    args = ["run", "--spec", str(short), "--store", str(tmp_path / "s2"), "--generations", "1",
            "--candidates", "1", "--model", f"scripted:{script}", "--author-model", f"mlx:{model}",
            "--adapter", str(adapter)]
    assert main(args) == 0
    s2 = Store.in_dir(tmp_path / "s2")
    tuned = s2.run_ids()[-1]
    spec = load_history(s2, tuned).spec
    assert spec["llm"]["adapter"] == str(adapter.resolve()) and spec["llm"]["adapter_hash"] == digest
    capsys.readouterr()
    assert main(["show", tuned, "--store", str(tmp_path / "s2")]) == 0
    assert f"adapter: {adapter.resolve()} (sha256 {digest[:16]})" in capsys.readouterr().out
    recipe = tmp_path / "tuned.recipe.json"
    assert main(["export", tuned, "--store", str(tmp_path / "s2"), "--recipe", str(recipe)]) == 0
    assert digest in recipe.read_text()  # the recipe carries the spec, adapter hash included
    author_calls = s2.llm_calls(tuned, "author")
    assert author_calls and all(c["model"].startswith("mlx:") or str(model) in c["model"] for c in author_calls)

    # the study arm: base author (group C) against the tuned one on the same panels
    study = tmp_path / "study.toml"
    study.write_text(SPEC.read_text().replace("generations = 3", "generations = 1").replace("candidates = 3",
                     "candidates = 1") + f'\n[llm]\nmodel = "scripted:{script}"\nauthor_model = "mlx:{model}"\n'
                     "author_answer_tokens = 8\nauthor_repairs = 0\n")
    capsys.readouterr()
    assert main(["ablate", "--spec", str(study), "--store", str(tmp_path / "s3"), "--repeats", "1",
                 "--groups", "C,tuned", "--adapter", str(adapter)]) == 0
    table = capsys.readouterr().out
    assert any(line.startswith("tuned ") for line in table.splitlines()), table
    s3 = Store.in_dir(tmp_path / "s3")
    arms = {ev["group"]: rid for rid in s3.run_ids() for ev in s3.events(rid, "ablation")}
    assert load_history(s3, arms["C"]).spec["llm"]["adapter"] == ""  # the base author
    assert load_history(s3, arms["tuned"]).spec["llm"]["adapter_hash"] == digest


def _tiny_model(path: Path) -> Path:
    """The shared tiny llama (tests/tiny_mlx_model.py), with a chat template (mlx-lm's chat dataset applies it)."""
    from tiny_mlx_model import tiny_model

    tiny_model(path)
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    cfg["chat_template"] = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                            "{% if add_generation_prompt %}assistant: {% endif %}")
    (path / "tokenizer_config.json").write_text(json.dumps(cfg))
    return path


def test_adapter_bad_input_is_refused_with_the_fix(tmp_path: Path) -> None:
    from bilevel.inner.chat import ChatConfigError
    from bilevel.outer.llm import model_ref
    from bilevel.outer.llm.mlx_backend import MlxModel
    from bilevel.runs.finetune import TuneError, pin_adapter, tune
    from bilevel.runs.spec import load_spec

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    with pytest.raises(TuneError, match="not an mlx-lm adapter folder"):
        pin_adapter(load_spec(None, {"llm": {"model": "mlx:/m", "adapter": str(adapter)}}))
    (adapter / "adapters.safetensors").write_bytes(b"weights")
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(TuneError, match="needs an mlx model"):
        pin_adapter(load_spec(None, {"llm": {"model": "scripted:demo", "adapter": str(adapter)}}))
    pinned = pin_adapter(load_spec(None, {"llm": {"model": "mlx:/m", "adapter": str(adapter)}}))
    recorded = pinned["llm"]["adapter_hash"]
    assert len(recorded) == 64
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    ref = model_ref(f"mlx:{model_dir}", options={"adapter": str(adapter), "adapter_hash": recorded})
    assert MlxModel(ref).adapter == str(adapter)
    (adapter / "adapters.safetensors").write_bytes(b"other weights")  # changed under a recorded run
    with pytest.raises(ChatConfigError, match="changed since the run recorded it"):
        MlxModel(ref)
    (model_dir / "config.json").write_text('{"num_hidden_layers": 1}')
    (tmp_path / "empty").mkdir()
    with pytest.raises(TuneError, match="no examples in train.jsonl"):
        tune(tmp_path / "empty", model_dir, tmp_path / "out")
