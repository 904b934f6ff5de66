"""``mlx-lora``: LoRA fine-tuning with mlx-lm on a mixture of datasets, per-domain sub-scores.

The space is the ranges of a nightly LoRA autoresearch loop: ``layers``
16-32 (LoRA on the last ``min(layers, model depth)`` blocks), ``rank`` 8-64,
``alpha`` 16-128 (mlx-lm scale = alpha / rank), ``dropout`` 0-0.15,
``learning_rate`` 1e-6-1e-4 (log), ``iterations`` 50-1200,
``grad_accum`` 2-8, ``mix_ratio`` 0.1-0.9 (share of task data against
general replay data) and ``w_code``/``w_math``/``w_chat`` 0.5-2.0
(per-domain weights inside the task share).

Domains are synthetic byte sources (see :mod:`judge.benchmarks.textsources`):
``code``, ``math`` and ``chat`` are the task domains, ``general`` the replay
domain; each instance (variant ``v{k}``) builds its own family.

Fidelities: ``proxy`` (default) uses ``proxy_model`` (default: a tiny,
randomly initialised local llama: 2 blocks, 64 wide, byte vocabulary; no
download) and ``iterations * proxy_scale`` optimiser steps (at least one);
``full`` uses ``model_path`` (an mlx-lm model directory: Apple silicon in
earnest) and the full iterations. Texts are fed as bytes (vocabulary 256) to
the tiny model, and through the model's tokenizer otherwise.

Score (lower is better unless said otherwise): ``primary`` = the best trial's
mean validation loss (nats per token) over the task domains; sub-scores
``loss:<domain>`` (lower is better) and ``retain:general`` = the general
domain's loss (lower is better) of that trial (found by its config and exact recorded
value, never by config alone: two seeds differ): the judge's veto floors and
sub-score regression caps work on them (give their direction, "lower").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bilevel.inner.objective import ObjectiveError
from bilevel.inner.records import InnerResult, Trial
from bilevel.inner.space import Config, FloatParam, IntParam, Space
from bilevel.judge.benchmarks import textsources as ts
from bilevel.judge.benchmarks.base import Benchmark, Instance, RunScore
from bilevel.judge.benchmarks.common import check_choice, check_float, check_int, curve
from bilevel.judge.errors import BenchmarkError

TASK_DOMAINS = ("code", "math", "chat")
SOURCES = {"code": "near_a", "math": "near_b", "chat": "scarce", "general": "easy"}
SEQ_LEN = 64
BATCH = 4
VAL_SEQS = 8
EMPTY_LOSS = math.log(256.0)

SPACE = Space((IntParam("layers", 16, 32), IntParam("rank", 8, 64), IntParam("alpha", 16, 128),
               FloatParam("dropout", 0.0, 0.15), FloatParam("learning_rate", 1e-6, 1e-4, log=True),
               IntParam("iterations", 50, 1200), IntParam("grad_accum", 2, 8), FloatParam("mix_ratio", 0.1, 0.9),
               FloatParam("w_code", 0.5, 2.0), FloatParam("w_math", 0.5, 2.0), FloatParam("w_chat", 0.5, 2.0)))


def domain_shares(config: Config) -> dict[str, float]:
    """Sampling shares of the four domains: ``mix_ratio`` split over the task domains by their weights,
    the rest to ``general``. They sum to one."""
    ratio = float(config["mix_ratio"])
    w = np.array([float(config[f"w_{d}"]) for d in TASK_DOMAINS])
    shares = {d: ratio * float(x) for d, x in zip(TASK_DOMAINS, w / w.sum(), strict=True)}
    shares["general"] = 1.0 - ratio
    return shares


def _tiny_model(seed: int) -> Any:
    import mlx.core as mx
    from mlx_lm.models import llama

    mx.random.seed(seed)
    args = llama.ModelArgs(model_type="llama", hidden_size=64, num_hidden_layers=2, intermediate_size=128,
                           num_attention_heads=4, rms_norm_eps=1e-5, vocab_size=256, num_key_value_heads=4)
    return llama.Model(args)


def _load(path: str) -> tuple[Any, Any]:
    """A fresh copy of the model at ``path`` for every trial: LoRA conversion mutates the model in place."""
    from mlx_lm import load

    model, tokenizer = load(path)[:2]
    return model, tokenizer


@dataclass(frozen=True)
class LoraObjective:
    """One (variant, seed): fine-tune LoRA adapters on the config's mixture; return the task loss."""

    variant: int
    seed: int
    fidelity: str
    model_path: str
    proxy_scale: float

    @property
    def space(self) -> Space:
        return SPACE

    def _tokens(self, text: np.ndarray, tokenizer: Any) -> np.ndarray:
        if tokenizer is None:
            return text.astype(np.int32)
        return np.asarray(tokenizer.encode(text.tobytes().decode("latin-1")), dtype=np.int32)

    def _batches(self, domain: str, n: int, tokenizer: Any, offset: int) -> np.ndarray:
        raw = ts.corpus(self.variant, 0.1, SOURCES[domain], (n + 1) * (SEQ_LEN + 1) * 2, offset)
        tok = self._tokens(raw, tokenizer)
        need = n * (SEQ_LEN + 1)
        if len(tok) < need:
            tok = np.tile(tok, math.ceil(need / max(len(tok), 1)))
        return tok[:need].reshape(n, SEQ_LEN + 1)

    def evaluate(self, config: Config) -> float:
        return task_loss(self.run(config))

    def run(self, config: Config) -> dict[str, float]:
        """Per-domain validation losses (nats per token) after fine-tuning with ``config``."""
        import mlx.core as mx
        import mlx.nn as nn
        import mlx.optimizers as optim
        from mlx_lm.tuner.utils import linear_to_lora_layers

        try:
            SPACE.validate(config)
        except ValueError as exc:
            raise ObjectiveError(f"mlx-lora config rejected: {exc}") from exc
        if self.fidelity == "full":
            model, tokenizer = _load(self.model_path)
            steps = int(config["iterations"])
        else:
            model, tokenizer = (_tiny_model(self.variant), None) if not self.model_path else _load(self.model_path)
            steps = max(1, round(int(config["iterations"]) * self.proxy_scale))
        model.freeze()
        depth = len(model.layers)
        mx.random.seed(self.seed)  # before the LoRA layers: their initial weights are the pair's, not the process's
        linear_to_lora_layers(model, min(int(config["layers"]), depth),
                              {"rank": int(config["rank"]), "scale": float(config["alpha"]) / int(config["rank"]),
                               "dropout": float(config["dropout"])})
        rng = np.random.default_rng(self.seed)
        shares = domain_shares(config)
        names = list(shares)
        accum = int(config["grad_accum"])
        pools = {d: self._batches(d, 64, tokenizer, self.seed) for d in names}
        opt = optim.Adam(learning_rate=float(config["learning_rate"]))

        def loss_fn(m: Any, x: Any, y: Any) -> Any:
            return nn.losses.cross_entropy(m(x), y, reduction="mean")

        grad_fn = nn.value_and_grad(model, loss_fn)
        for _ in range(steps):
            grads_sum = None
            for _ in range(accum):
                picks = rng.choice(len(names), size=BATCH, p=np.array([shares[d] for d in names]))
                rows = np.stack([pools[names[k]][rng.integers(len(pools[names[k]]))] for k in picks])
                _, grads = grad_fn(model, mx.array(rows[:, :-1]), mx.array(rows[:, 1:]))
                grads_sum = grads if grads_sum is None else _tree_add(grads_sum, grads)
            opt.update(model, _tree_scale(grads_sum, 1.0 / accum))
            mx.eval(model.parameters(), opt.state)
        model.eval()
        out = {}
        for d in names:
            val = self._batches(d, VAL_SEQS, tokenizer, 10_000_000 + self.variant)
            loss = loss_fn(model, mx.array(val[:, :-1]), mx.array(val[:, 1:]))
            out[d] = float(loss.item())
        if not all(math.isfinite(v) for v in out.values()):
            raise ObjectiveError(f"training diverged (non-finite loss) with {config!r}")
        _LOSSES[_trial_key(self.variant, config, task_loss(out))] = out
        return out


def task_loss(losses: dict[str, float]) -> float:
    """The trial's value: the mean validation loss over the task domains."""
    return float(np.mean([losses[d] for d in TASK_DOMAINS]))


def _trial_key(variant: int, config: Config, value: float) -> str:
    """A trial as it is recorded (variant, config, exact value): the recorded trial carries no seed, and two
    seeds of one config give different values, so the value tells the seeds apart."""
    return repr((variant, sorted(config.items()), float(value).hex()))


# the per-domain losses of this process's trials, keyed by :func:`_trial_key`
_LOSSES: dict[str, dict[str, float]] = {}


def trial_subscores(variant: int, trial: Trial) -> dict[str, float]:
    """Sub-scores of one recorded trial: its per-domain losses, found by its config and exact value and
    checked against that value (empty when this process did not run it)."""
    if trial.score is None:
        return {}
    losses = _LOSSES.get(_trial_key(variant, trial.config, trial.score))
    if losses is None or task_loss(losses) != trial.score:
        return {}
    subs = {f"loss:{d}": v for d, v in losses.items() if d in TASK_DOMAINS}
    subs["retain:general"] = losses["general"]
    return subs


def _tree_add(a: Any, b: Any) -> Any:
    from mlx.utils import tree_map

    return tree_map(lambda x, y: x + y, a, b)


def _tree_scale(a: Any, s: float) -> Any:
    from mlx.utils import tree_map

    return tree_map(lambda x: x * s, a)


class MlxLora(Benchmark):
    """LoRA fine-tuning with mlx-lm (see the module docstring); 12 variants by default."""

    name = "mlx-lora"
    OPTIONS = ("fidelity", "model_path", "variants", "proxy_scale")
    SCORE_TEXT = "mean validation loss (nats per token) over the task domains, lower is better"
    SUGGESTED = {"inner": {"budget": 4},
                 "panels": {"search_instances": 1, "validation_instances": 3, "test_instances": 2,
                            "seeds_per_instance": 1},
                 "run": {"generations": 1, "candidates": 2, "workers": 1}}

    def __init__(self, fidelity: Any = "proxy", model_path: Any = "", variants: Any = 12,
                 proxy_scale: Any = 0.004) -> None:
        self.fidelity = check_choice(self.name, "fidelity", fidelity, ("proxy", "full"))
        self.model_path = str(model_path or "")
        if self.fidelity == "full" and not self.model_path:
            raise BenchmarkError("mlx-lora fidelity 'full' needs option 'model_path', a local mlx-lm model directory")
        self.variants = check_int(self.name, "variants", variants, 1, 1000)
        self.proxy_scale = check_float(self.name, "proxy_scale", proxy_scale, 1e-4, 1.0)
        try:
            import mlx.core  # noqa: F401
        except ImportError as exc:
            raise BenchmarkError("mlx-lora needs mlx and mlx-lm: pip install 'bilevel[mlx]' "
                                 "(on Linux this pulls mlx[cpu])") from exc

    def instances(self) -> list[Instance]:
        return [Instance(key=f"lora-{self.fidelity}-v{k}", group=f"v{k % 3}", data={"variant": k})
                for k in range(self.variants)]

    def space(self, instance: Instance) -> Space:
        return SPACE

    def objective(self, instance: Instance, seed: int) -> LoraObjective:
        return LoraObjective(int(instance.data["variant"]), int(seed), self.fidelity, self.model_path,
                             self.proxy_scale)

    def score(self, instance: Instance, result: InnerResult) -> RunScore:
        c = curve(result, EMPTY_LOSS)
        subs: dict[str, float] = {"auc": c.auc}
        if c.best_trial is not None:
            subs.update(trial_subscores(int(instance.data["variant"]), c.best_trial))
        return RunScore(c.best, subs)

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"name": self.name,
                "options": {"fidelity": self.fidelity, "model_path": self.model_path, "variants": self.variants,
                            "proxy_scale": self.proxy_scale},
                "versions": {"mlx": version("mlx"), "mlx-lm": version("mlx-lm"), "numpy": np.__version__},
                "n_instances": self.variants, "direction": "minimize", "space": SPACE.to_json(),
                "objective": "mean task-domain validation loss after LoRA fine-tuning",
                "bound": {"known_optimum": False, "empty_run": EMPTY_LOSS},
                "score": {"primary": "best trial's mean task loss",
                          "subscores": {"loss:<domain>": "lower is better", "retain:general": "lower is better",
                                        "auc": "lower is better"}},
                "fidelity": "proxy (tiny or proxy model, iterations x proxy_scale) or full (model_path, iterations)"}
