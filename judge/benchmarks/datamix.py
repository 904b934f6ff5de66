"""``datamix-lm``: choose data-mix weights and learner hyperparameters; score bits per byte on a target.

An instance is (learner tier, target sharpness, target variant): key
``datamix-{learner}-s{sharpness}-v{variant}``, group ``s{sharpness}`` (the
kind of target). Each variant builds its own target source and six training
domains around it (see :mod:`judge.benchmarks.textsources`), plus any real
text directories named in ``text_dirs``.

Space: ``mix`` (a simplex over the domains) and the learner's hyperparameters:

- ``ngram`` (default, numpy): ``order`` 1..6, ``discount`` 0.05..0.95,
  ``interpolation`` 0..0.9 (see :mod:`judge.benchmarks.ngram`);
- ``neural`` (needs the ``torch`` extra): ``lr``, ``width``, ``weight_decay``,
  ``batch_size``, ``warmup`` (see :mod:`judge.benchmarks.neural_lm`).

A trial trains on exactly ``tokens`` bytes (the fidelity knob), split over
the domains in whole 512-byte documents by the largest-remainder rule, and
returns its validation bits per byte on a fixed target text *minus* that
text's exact Bayes code length under the target source: the regret, >= 0 up
to the uniform charge on each document's first two bytes. The training text
depends only on (variant, domain, seed), so every config of an inner run and
both stacks of a paired comparison see the same data (common random numbers).

Score of one inner run (lower is better unless said otherwise): ``primary`` =
``regret_bpb`` of the best trial; ``bpb`` its bits per byte; ``auc`` the mean
best-so-far regret. An empty run scores ``EMPTY_REGRET`` (the regret of the
uniform byte model is 8 - H, at most 8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bilevel.inner.objective import ObjectiveError
from bilevel.inner.records import InnerResult
from bilevel.inner.space import CategoricalParam, Config, FloatParam, IntParam, SimplexParam, Space
from bilevel.judge.benchmarks import textsources as ts
from bilevel.judge.benchmarks.base import Benchmark, Instance, RunScore
from bilevel.judge.benchmarks.common import check_choice, check_float, check_int, check_strings, curve
from bilevel.judge.benchmarks.ngram import MAX_ORDER, train_ngram
from bilevel.judge.errors import BenchmarkError

LEARNERS = ("ngram", "neural")
DEFAULT_SHARPNESS = (0.05, 0.1, 0.3)
EMPTY_REGRET = 8.0
MAX_TEXT_BYTES = 4 << 20


def mixture_weights(config: Config, domains: tuple[str, ...]) -> np.ndarray:
    """The config's ``mix`` as weights over ``domains`` that sum to one (renormalised against rounding);
    ObjectiveError if they are not non-negative finite numbers with a positive sum."""
    mix = config.get("mix")
    if not isinstance(mix, dict) or set(mix) != set(domains):
        raise ObjectiveError(f"config 'mix' must map exactly the domains {list(domains)} to weights; got {mix!r}")
    w = np.array([float(mix[d]) for d in domains])
    if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ObjectiveError(f"mix weights must be finite, >= 0 and not all 0; got {mix!r}")
    return w / w.sum()


def allocate(weights: np.ndarray, n_docs: int) -> np.ndarray:
    """Whole documents per domain, summing to ``n_docs`` (largest remainder; ties to the lower index)."""
    raw = weights * n_docs
    docs = np.floor(raw).astype(int)
    short = n_docs - int(docs.sum())
    order = np.argsort(-(raw - docs), kind="stable")
    docs[order[:short]] += 1
    return docs


@lru_cache(maxsize=16)
def _real_text(path: str) -> np.ndarray:
    """The bytes of every file under ``path`` (sorted, first MAX_TEXT_BYTES), as whole documents."""
    root = Path(path)
    if not root.is_dir():
        raise BenchmarkError(f"datamix-lm text_dirs entry {path!r} is not a directory; name directories of text files")
    chunks: list[bytes] = []
    size = 0
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        data = f.read_bytes()[: MAX_TEXT_BYTES - size]
        chunks.append(data)
        size += len(data)
        if size >= MAX_TEXT_BYTES:
            break
    usable = size // ts.DOC_LEN * ts.DOC_LEN
    if usable == 0:
        raise BenchmarkError(f"datamix-lm text_dirs entry {path!r} holds less than {ts.DOC_LEN} bytes of text")
    return np.frombuffer(b"".join(chunks)[:usable], dtype=np.uint8)


@dataclass(frozen=True)
class DatamixObjective:
    """One (instance, seed): ``evaluate`` trains the learner on the config's mixture and returns the regret
    in bits per byte over the target's Bayes code length. Picklable (data is cached per process)."""

    learner: str
    sharpness: float
    variant: int
    seed: int
    tokens: int
    val_bytes: int
    text_dirs: tuple[str, ...] = ()

    @property
    def domains(self) -> tuple[str, ...]:
        return ts.DOMAINS + tuple(f"text{i}" for i in range(len(self.text_dirs)))

    @property
    def space(self) -> Space:
        return datamix_space(self.learner, self.domains)

    def training_text(self, weights: np.ndarray) -> np.ndarray:
        """``tokens`` bytes drawn from the mixture (whole documents; same text for the same seed)."""
        n_docs = max(1, self.tokens // ts.DOC_LEN)
        docs = allocate(weights, n_docs)
        parts = []
        for i, (domain, k) in enumerate(zip(self.domains, docs, strict=True)):
            if k == 0:
                continue
            if domain in ts.DOMAINS:
                text = ts.corpus(self.variant, self.sharpness, domain, n_docs * ts.DOC_LEN, self.seed)
            else:
                real = _real_text(self.text_dirs[i - len(ts.DOMAINS)])
                text = np.tile(real, math.ceil(n_docs * ts.DOC_LEN / len(real)))
            parts.append(text[: k * ts.DOC_LEN])
        return np.concatenate(parts)

    def evaluate(self, config: Config) -> float:
        weights = mixture_weights(config, self.domains)
        data = self.training_text(weights)
        val, bayes = ts.validation(self.variant, self.sharpness, self.val_bytes)
        if self.learner == "ngram":
            try:
                model = train_ngram(data, int(config["order"]), float(config["discount"]),
                                    float(config["interpolation"]), ts.DOC_LEN)
            except (KeyError, TypeError, ValueError) as exc:
                raise ObjectiveError(f"bad n-gram hyperparameters in {config!r}: {exc}") from exc
            bpb = model.bits_per_byte(val)
        else:
            from bilevel.judge.benchmarks.neural_lm import train_and_score

            bpb = train_and_score(data, val, config, seed=self.seed, doc_len=ts.DOC_LEN)
        if not math.isfinite(bpb):
            raise ObjectiveError(f"the learner produced a non-finite validation loss for {config!r}")
        return bpb - bayes


@lru_cache(maxsize=16)
def datamix_space(learner: str, domains: tuple[str, ...]) -> Space:
    mix = SimplexParam("mix", domains)
    if learner == "ngram":
        return Space((mix, IntParam("order", 1, MAX_ORDER), FloatParam("discount", 0.05, 0.95),
                      FloatParam("interpolation", 0.0, 0.9)))
    return Space((mix, FloatParam("lr", 1e-4, 3e-2, log=True), CategoricalParam("width", (32, 64, 128)),
                  FloatParam("weight_decay", 1e-5, 1e-1, log=True), CategoricalParam("batch_size", (32, 64, 128)),
                  FloatParam("warmup", 0.0, 0.3)))


class DatamixLM(Benchmark):
    """Data-mix and learner tuning of a byte language model on synthetic domains of known entropy.
    Defaults: the n-gram learner, sharpness 0.05/0.1/0.3 x 8 variants = 24 instances, 128 KiB of
    training bytes per trial, 32 KiB of validation text."""

    name = "datamix-lm"
    OPTIONS = ("learner", "sharpness", "variants", "tokens", "val_bytes", "text_dirs")
    SCORE_TEXT = "validation bits per byte above the target's exact Bayes code length (regret), lower is better"
    SUGGESTED = {"inner": {"budget": 12},
                 "panels": {"search_instances": 2, "validation_instances": 8, "test_instances": 8,
                            "seeds_per_instance": 1},
                 "run": {"generations": 2, "candidates": 3}}

    def __init__(self, learner: Any = "ngram", sharpness: Any = DEFAULT_SHARPNESS, variants: Any = 8,
                 tokens: Any = 131072, val_bytes: Any = 32768, text_dirs: Any = ()) -> None:
        self.learner = check_choice(self.name, "learner", learner, LEARNERS)
        if isinstance(sharpness, int | float):
            sharpness = [sharpness]
        if not isinstance(sharpness, list | tuple) or not sharpness:
            raise BenchmarkError(f"datamix-lm option 'sharpness' must be a non-empty list of numbers, got {sharpness!r}")
        self.sharpness = tuple(sorted({check_float(self.name, "sharpness", s, 0.01, 5.0) for s in sharpness}))
        self.variants = check_int(self.name, "variants", variants, 1, 1000)
        self.tokens = check_int(self.name, "tokens", tokens, 4 * ts.DOC_LEN, 1 << 24)
        self.val_bytes = check_int(self.name, "val_bytes", val_bytes, ts.DOC_LEN, 1 << 22)
        dirs = check_strings(self.name, "text_dirs", text_dirs)
        self.text_dirs = tuple(str(Path(p).expanduser().resolve()) for p in dirs)
        for p in self.text_dirs:
            _real_text(p)  # refuse a bad directory when the run starts
        if self.learner == "neural":
            from bilevel.judge.benchmarks.neural_lm import require_torch

            require_torch()

    def instances(self) -> list[Instance]:
        return [Instance(key=f"datamix-{self.learner}-s{s:g}-v{v}", group=f"s{s:g}",
                         data={"learner": self.learner, "sharpness": s, "variant": v})
                for s in self.sharpness for v in range(self.variants)]

    def space(self, instance: Instance) -> Space:
        return self.objective(instance, 0).space

    def objective(self, instance: Instance, seed: int) -> DatamixObjective:
        s, v = float(instance.data["sharpness"]), int(instance.data["variant"])
        if s not in self.sharpness or not 0 <= v < self.variants:
            raise BenchmarkError(f"instance {instance.key!r} is outside this datamix-lm's options")
        return DatamixObjective(self.learner, s, v, int(seed), self.tokens, self.val_bytes, self.text_dirs)

    def data_files(self) -> list[str]:
        """Every file under ``text_dirs`` (the manifest hashes their contents)."""
        return [str(f) for d in self.text_dirs for f in sorted(p for p in Path(d).rglob("*") if p.is_file())]

    def score(self, instance: Instance, result: InnerResult) -> RunScore:
        c = curve(result, EMPTY_REGRET)
        _, bayes = ts.validation(int(instance.data["variant"]), float(instance.data["sharpness"]), self.val_bytes)
        return RunScore(c.best, {"regret_bpb": c.best, "bpb": c.best + bayes, "auc": c.auc})

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "options": {"learner": self.learner, "sharpness": list(self.sharpness), "variants": self.variants,
                        "tokens": self.tokens, "val_bytes": self.val_bytes, "text_dirs": list(self.text_dirs)},
            "versions": {"numpy": np.__version__, "sources": "textsources-v1", "learner": f"{self.learner}-v1"},
            "n_instances": len(self.sharpness) * self.variants,
            "direction": "minimize",
            "space": datamix_space(self.learner, DatamixObjective(self.learner, 0.1, 0, 0, 1, 1,
                                                                  self.text_dirs).domains).to_json(),
            "objective": "validation bpb on the target text minus its exact Bayes code length",
            "bound": {"known_optimum": True, "bayes": "exact code length of the validation text under the target "
                      "source (entropy rate of an order-2 chain)", "empty_run": EMPTY_REGRET},
            "score": {"primary": "regret_bpb of the best trial",
                      "subscores": {"regret_bpb": "lower is better", "bpb": "lower is better",
                                    "auc": "lower is better"}},
            "fidelity": "tokens: training bytes per trial",
        }
