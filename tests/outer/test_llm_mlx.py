"""The mlx path end to end: a tiny randomly initialised llama and a tiny tokenizer, built in a tmp dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_mlx_model import tiny_model

from bilevel.inner.chat import Caller, ChatConfigError, ChatRequest, ChatSettings
from bilevel.outer.llm import build_model, model_ref


@pytest.mark.slow
def test_mlx_generates_text_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("mlx_lm")
    path = tmp_path / "tiny-llama"
    tiny_model(path)
    settings = ChatSettings(max_tokens=12, temperature=0.0, seed=1)
    ref = model_ref(f"mlx:{path}", settings)
    rec = Caller(ref).ask(ChatRequest("You propose.", (("user", "Trial 1. Propose JSON."),), "inner", "t1"))
    assert rec.error == "", rec.error
    assert 0 < rec.tokens_out <= 12 and rec.tokens_in > 10
    assert isinstance(rec.response, str) and rec.response
    again = Caller(ref).ask(ChatRequest("You propose.", (("user", "Trial 1. Propose JSON."),), "inner", "t1"))
    assert again.response == rec.response  # greedy decoding with a seed is reproducible
    with pytest.raises(ChatConfigError, match="is not a directory"):
        build_model(model_ref(f"mlx:{tmp_path / 'missing'}"))
