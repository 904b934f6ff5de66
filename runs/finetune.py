"""LoRA fine-tuning of the author model on exported data (``bilevel tune``, issue 16).

``tune`` runs mlx-lm's own LoRA trainer (``mlx_lm.lora.train_model``) on the
``train.jsonl``/``valid.jsonl`` that ``bilevel export RUN... --finetune DIR``
writes, starting from a local mlx-lm model directory, and leaves the adapter
(``adapters.safetensors`` and ``adapter_config.json``) in ``out``. The
adapter's hash (:func:`adapter_hash`) is what a run with ``--adapter`` records.
On Linux mlx runs on the CPU: keep ``iters`` to a handful on a tiny model.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from pathlib import Path

from bilevel.runs.spec import RunSpec, SpecError


class TuneError(SpecError):
    """Bad input to ``bilevel tune``; the message says what to change."""


@dataclass(frozen=True)
class TuneResult:
    adapter: Path
    adapter_hash: str
    train_examples: int
    valid_examples: int
    iters: int


def adapter_hash(adapter: Path) -> str:
    """The adapter's content hash (what a run with ``--adapter`` records); TuneError if it is not an adapter."""
    from bilevel.inner.chat import ChatConfigError
    from bilevel.outer.llm.mlx_backend import adapter_hash as backend_hash

    try:
        return backend_hash(adapter)
    except ChatConfigError as exc:
        raise TuneError(str(exc)) from exc


def pin_adapter(spec: RunSpec) -> RunSpec:
    """A new run's spec with ``[llm] adapter`` resolved and its hash recorded as ``adapter_hash`` (called by
    ``bilevel run`` before the run is recorded); refused without an ``mlx:`` model."""
    llm = spec["llm"]
    if not llm.get("adapter"):
        return spec
    model = llm["author_model"] or llm["model"]
    if not str(model).startswith("mlx:"):
        raise TuneError(f"[llm] adapter (--adapter) needs an mlx model (--model mlx:PATH); the model is {model!r}")
    path = str(Path(llm["adapter"]).expanduser().resolve())
    found = adapter_hash(Path(path))
    if llm.get("adapter_hash") and llm["adapter_hash"] != found:
        raise TuneError(f"adapter {path} has hash {found[:12]}, not the adapter_hash {llm['adapter_hash'][:12]} "
                        "the spec names; remove adapter_hash to pin the adapter as it is now")
    data = spec.to_json()
    data["llm"].update({"adapter": path, "adapter_hash": found})
    return RunSpec(data)


def _count(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()) if path.is_file() else 0


def tune(data: Path, model: Path, out: Path, iters: int = 10, *, batch_size: int = 4, rank: int = 8,
         learning_rate: float = 1e-4, max_seq_length: int = 2048, seed: int = 0) -> TuneResult:
    """Train a LoRA adapter on ``data`` for ``iters`` steps; called by ``bilevel tune``."""
    data, model, out = Path(data), Path(model), Path(out)
    if not (model / "config.json").is_file():
        raise TuneError(f"--model {model} is not a local mlx-lm model directory (no config.json)")
    n_train, n_valid = _count(data / "train.jsonl"), _count(data / "valid.jsonl")
    if n_train == 0:
        raise TuneError(f"--data {data} has no examples in train.jsonl; write it with "
                        "`bilevel export RUN... --finetune DIR` from runs whose judge passed model-written answers")
    if iters < 1:
        raise TuneError(f"--iters must be at least 1, got {iters}")
    try:
        from mlx_lm import load
        from mlx_lm.lora import CONFIG_DEFAULTS, train_model
        from mlx_lm.tuner.datasets import load_dataset
    except ImportError as exc:
        raise TuneError("bilevel tune needs mlx-lm: pip install 'bilevel[mlx]'") from exc
    depth = int(json.loads((model / "config.json").read_text())["num_hidden_layers"])
    args = types.SimpleNamespace(**{**CONFIG_DEFAULTS, "model": str(model), "data": str(data), "train": True,
                                    "fine_tune_type": "lora", "optimizer": "adam", "iters": iters,
                                    "batch_size": max(1, min(batch_size, n_train)), "num_layers": min(16, depth),
                                    "learning_rate": learning_rate, "adapter_path": str(out), "seed": seed,
                                    "max_seq_length": max_seq_length, "steps_per_eval": iters,
                                    "steps_per_report": max(1, iters), "save_every": iters,
                                    "val_batches": -1 if n_valid else 0,
                                    "lora_parameters": {"rank": rank, "dropout": 0.0, "scale": 20.0}})
    model_obj, tokenizer = load(str(model))[:2]
    train_set, valid_set, _ = load_dataset(args, tokenizer)  # type: ignore[arg-type]
    train_model(args, model_obj, train_set, valid_set)
    return TuneResult(out, adapter_hash(out), n_train, n_valid, iters)
