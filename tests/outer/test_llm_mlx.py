"""The mlx path end to end: a tiny randomly initialised llama and a tiny tokenizer, built in a tmp dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bilevel.inner.chat import Caller, ChatConfigError, ChatRequest, ChatSettings
from bilevel.outer.llm import build_model, model_ref

VOCAB = ["<unk>", "<s>", "</s>", *[chr(c) for c in range(32, 127)]]


def _tiny_model(path: Path) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    config = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 64,
              "num_attention_heads": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "vocab_size": len(VOCAB),
              "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2}
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    mx.random.seed(0)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.save_safetensors(str(path / "model.safetensors"), dict(tree_flatten(model.parameters())))
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(VOCAB)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))


@pytest.mark.slow
def test_mlx_generates_text_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("mlx_lm")
    path = tmp_path / "tiny-llama"
    _tiny_model(path)
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
