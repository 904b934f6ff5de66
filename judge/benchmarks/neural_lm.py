"""The neural tier of ``datamix-lm``: a small byte MLP over the last 8 bytes, trained with torch (optional).

torch is not part of the default install: ``require_torch`` raises a
BenchmarkError saying how to install the ``torch`` extra. Training runs a
fixed number of steps (``tokens / (batch_size * 8)`` capped at 400) with
AdamW, linear warm-up over the ``warmup`` share of steps and cosine decay;
the validation loss is reported in bits per byte.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bilevel.inner.objective import ObjectiveError
from bilevel.judge.errors import BenchmarkError

CONTEXT = 8
MAX_STEPS = 400


def require_torch() -> Any:
    """The torch module, or a BenchmarkError with the install line."""
    try:
        import torch
    except ImportError as exc:
        raise BenchmarkError("datamix-lm learner 'neural' needs torch: pip install 'bilevel[torch]' "
                             "(a CPU build, torch==2.13.0); or use learner = 'ngram'") from exc
    return torch


def _windows(data: np.ndarray, doc_len: int) -> tuple[np.ndarray, np.ndarray]:
    pos = np.arange(len(data))
    idx = pos[(pos % doc_len) >= CONTEXT]
    ctx = np.stack([data[idx - j] for j in range(CONTEXT, 0, -1)], axis=1)
    return ctx.astype(np.int64), data[idx].astype(np.int64)


def train_and_score(train: np.ndarray, val: np.ndarray, config: dict[str, Any], seed: int, doc_len: int) -> float:
    """Validation bits per byte after training on ``train`` with the config's hyperparameters."""
    torch = require_torch()
    try:
        lr, width = float(config["lr"]), int(config["width"])
        wd, batch, warmup = float(config["weight_decay"]), int(config["batch_size"]), float(config["warmup"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ObjectiveError(f"neural learner needs lr, width, weight_decay, batch_size, warmup; got {config!r}") from exc
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x, y = (torch.from_numpy(a) for a in _windows(train, doc_len))
    vx, vy = (torch.from_numpy(a) for a in _windows(val, doc_len))
    model = torch.nn.Sequential(torch.nn.Embedding(256, 16), torch.nn.Flatten(),
                                torch.nn.Linear(16 * CONTEXT, width), torch.nn.GELU(), torch.nn.Linear(width, 256))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    steps = max(1, min(MAX_STEPS, len(x) // batch))
    gen = torch.Generator().manual_seed(seed)
    warm = max(1, int(warmup * steps))
    for step in range(steps):
        scale = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
        for group in opt.param_groups:
            group["lr"] = lr * scale
        i = torch.randint(0, len(x), (batch,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        nll = torch.nn.functional.cross_entropy(model(vx), vy).item()
    # the first CONTEXT bytes of each document are charged as uniform over 256 (8 bits)
    n_ctx = len(vy)
    return float((nll / math.log(2) * n_ctx + 8.0 * (len(val) - n_ctx)) / len(val))
