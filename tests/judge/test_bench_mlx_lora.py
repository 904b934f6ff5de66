"""mlx-lora on a tiny randomly initialised local model (Linux CPU): a handful of steps only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bilevel.inner.records import InnerResult, Trial
from bilevel.judge.errors import BenchmarkError

pytest.importorskip("mlx.core")
pytest.importorskip("mlx_lm")

from bilevel.judge.benchmarks import get_benchmark  # noqa: E402
from bilevel.judge.benchmarks.mlx_lora import SPACE, domain_shares  # noqa: E402


def test_space_has_the_nightly_ranges_and_shares_sum_to_one() -> None:
    ranges = {p.name: (p.low, p.high) for p in SPACE.params}  # type: ignore[union-attr]
    assert ranges["layers"] == (16, 32) and ranges["rank"] == (8, 64) and ranges["alpha"] == (16, 128)
    assert ranges["learning_rate"] == (1e-6, 1e-4) and ranges["iterations"] == (50, 1200)
    assert ranges["grad_accum"] == (2, 8) and ranges["mix_ratio"] == (0.1, 0.9) and ranges["w_code"] == (0.5, 2.0)
    for seed in range(20):
        shares = domain_shares(SPACE.sample(np.random.default_rng(seed)))
        assert math.isclose(sum(shares.values()), 1.0) and min(shares.values()) >= 0
    with pytest.raises(BenchmarkError, match="model_path"):
        get_benchmark("mlx-lora", {"fidelity": "full"})


@pytest.mark.slow
def test_tiny_lora_trial_gives_per_domain_subscores() -> None:
    bench = get_benchmark("mlx-lora", {"variants": 3})
    inst = bench.instances()[0]
    obj = bench.objective(inst, 0)
    cfg = SPACE.sample(np.random.default_rng(0)) | {"iterations": 50, "grad_accum": 2, "learning_rate": 1e-4}
    value = obj.evaluate(cfg)
    assert math.isfinite(value) and 0 < value < 20
    score = bench.score(inst, InnerResult((Trial(0, cfg, value, True, "base"),)))
    assert score.primary == value
    assert {"loss:code", "loss:math", "loss:chat", "retain:general"} <= set(score.subscores)
    assert score.primary == pytest.approx(np.mean([score.subscores[f"loss:{d}"] for d in ("code", "math", "chat")]))


@pytest.mark.slow
def test_subscores_come_from_the_recorded_trial_and_seeds_set_the_lora_weights() -> None:
    bench = get_benchmark("mlx-lora", {"variants": 3, "proxy_scale": 1e-4})
    inst = bench.instances()[1]
    cfg = SPACE.sample(np.random.default_rng(1)) | {"iterations": 50, "grad_accum": 2, "learning_rate": 1e-4,
                                                     "dropout": 0.0}
    a, b = bench.objective(inst, 0).evaluate(cfg), bench.objective(inst, 1).evaluate(cfg)
    assert bench.objective(inst, 0).evaluate(cfg) == a  # the pair's seed fixes everything, LoRA init included
    assert a != b  # another seed: other LoRA weights and batches, another task
    for value in (a, b):  # the seed-1 run came last; each recorded trial still gets its own losses
        score = bench.score(inst, InnerResult((Trial(0, cfg, value, True, "base"),)))
        assert score.primary == value
        assert score.primary == pytest.approx(np.mean([score.subscores[f"loss:{d}"] for d in ("code", "math", "chat")]))
    other = bench.score(inst, InnerResult((Trial(0, cfg, a + 1e-9, True, "base"),)))
    assert "loss:code" not in other.subscores  # a value no trial produced gets no borrowed sub-scores
