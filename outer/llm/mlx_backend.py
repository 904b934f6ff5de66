"""The mlx backend: mlx-lm generation from a local model directory (Apple silicon; CPU on Linux).

``mlx:/path/to/model`` names a directory mlx-lm can ``load`` (config.json,
weights, tokenizer). The model is loaded once per process and kept. The
prompt goes through the tokenizer's chat template when it has one. Sampling
uses the temperature; the seed seeds mlx's random generator before each call.
With an ``adapter`` option (``--adapter DIR`` / ``[llm] adapter``, a LoRA
adapter ``bilevel tune`` wrote) the model loads with it, after its hash is
checked against the ``adapter_hash`` the run recorded.
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from bilevel.inner.chat import ChatConfigError, ChatError, ChatReply, ChatRequest, ChatSettings, ModelRef

_LOCK = threading.Lock()
ADAPTER_FILES = ("adapters.safetensors", "adapter_config.json")


def adapter_hash(adapter: str | Path) -> str:
    """sha256 over an mlx-lm adapter folder's weights and config (names and bytes)."""
    folder = Path(adapter)
    missing = [f for f in ADAPTER_FILES if not (folder / f).is_file()]
    if missing:
        raise ChatConfigError(f"{folder} is not an mlx-lm adapter folder (missing {', '.join(missing)}); "
                              "make one with `bilevel tune --out DIR`")
    h = hashlib.sha256()
    for name in ADAPTER_FILES:
        h.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    return h.hexdigest()


@lru_cache(maxsize=2)
def _load(path: str, adapter: str = "") -> tuple[Any, Any]:
    try:
        from mlx_lm import load
    except ImportError as exc:
        raise ChatConfigError("the mlx backend needs mlx-lm: pip install 'bilevel[mlx]'") from exc
    try:
        model, tokenizer = load(path, adapter_path=adapter or None)[:2]
    except Exception as exc:  # mlx-lm raises many kinds for a bad directory
        raise ChatConfigError(f"mlx-lm cannot load {path!r}: {exc}") from exc
    return model, tokenizer


def _prompt(tokenizer: Any, request: ChatRequest) -> str:
    messages = [{"role": "system", "content": request.system}, *request.messages_json()]
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant: "


class MlxModel:
    """``mlx:/path/to/model``."""

    def __init__(self, ref: ModelRef) -> None:
        self.spec = ref.spec
        self.path = ref.name
        if not Path(self.path).is_dir():
            raise ChatConfigError(f"model {ref.spec!r}: {self.path} is not a directory; give the path of a local "
                                  "mlx-lm model (config.json, weights, tokenizer)")
        options = dict(ref.options)
        self.adapter = options.get("adapter", "")
        if self.adapter:
            found, recorded = adapter_hash(self.adapter), options.get("adapter_hash", "")
            if recorded and found != recorded:
                raise ChatConfigError(f"adapter {self.adapter} changed since the run recorded it "
                                      f"(hash {found[:12]}, recorded {recorded[:12]}); restore it or start a new run")

    def complete(self, request: ChatRequest, settings: ChatSettings) -> ChatReply:
        """Generate up to ``max_tokens`` tokens (no timeout: generation is local and bounded by max_tokens)."""
        import mlx.core as mx
        from mlx_lm import generate
        from mlx_lm.sample_utils import make_sampler

        model, tokenizer = _load(self.path, self.adapter)
        prompt = _prompt(tokenizer, request)
        with _LOCK:
            if settings.seed is not None:
                mx.random.seed(settings.seed)
            try:
                text = generate(model, tokenizer, prompt, max_tokens=settings.max_tokens,
                                sampler=make_sampler(temp=settings.temperature))
            except Exception as exc:  # a generation failure is data, not a crash of the host
                raise ChatError(f"mlx-lm generation failed: {exc}") from exc
        tokens_out = len(tokenizer.encode(text))
        # mlx-lm stops at max_tokens without saying so: reaching it is the end-of-length signal.
        return ChatReply(text, len(tokenizer.encode(prompt)), tokens_out, self.path,
                         truncated=tokens_out >= settings.max_tokens)
