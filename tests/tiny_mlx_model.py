"""A tiny random llama for mlx-lm (one layer, 32 wide, a character vocabulary), written as a model folder:
shared by the mlx generation test and the closed-loop (tune) test. Needs mlx and mlx-lm."""

from __future__ import annotations

import json
from pathlib import Path

VOCAB = ["<unk>", "<s>", "</s>", *[chr(c) for c in range(32, 127)]]


def tiny_model(path: Path) -> None:
    """Write the model folder at ``path`` (which must not exist)."""
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
