"""datamix-lm: sources of known entropy, the n-gram learner, simplex weights, scores and the neural tier."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bilevel.inner.objective import ObjectiveError
from bilevel.inner.records import InnerResult, Trial
from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.benchmarks import textsources as ts
from bilevel.judge.benchmarks.datamix import DatamixLM, allocate, mixture_weights
from bilevel.judge.benchmarks.ngram import train_ngram
from bilevel.judge.errors import BenchmarkError

SMALL = {"variants": 2, "sharpness": [0.1], "tokens": 32768, "val_bytes": 8192}


def _cfg(mix: dict[str, float], order: int = 3) -> dict[str, object]:
    full = {d: 0.0 for d in ts.DOMAINS} | mix
    total = sum(full.values())
    return {"mix": {d: w / total for d, w in full.items()}, "order": order, "discount": 0.7, "interpolation": 0.1}


def test_entropy_rate_matches_the_code_length_of_a_long_sample() -> None:
    target = ts.family(0, 0.1).target
    data = target.sample(200_000, np.random.default_rng(5))
    empirical = target.codelength_bits(data) / len(data)
    assert abs(empirical - target.entropy_rate()) < 0.03
    assert ts.family(0, 0.1).domains["noise"].entropy_rate() == 8.0


def test_ngram_of_the_right_order_approaches_the_bayes_bound_and_beats_order_one() -> None:
    fam = ts.family(1, 0.1)
    train = fam.target.sample(300_000, np.random.default_rng(1))
    val = fam.target.sample(20_000, np.random.default_rng(2))
    bayes = fam.target.codelength_bits(val) / len(val)
    good = train_ngram(train, 3, 0.7, 0.0, ts.DOC_LEN).bits_per_byte(val)
    weak = train_ngram(train, 1, 0.7, 0.0, ts.DOC_LEN).bits_per_byte(val)
    assert bayes <= good < bayes + 0.25
    assert weak > good + 0.5


def test_regret_is_small_for_related_data_and_large_for_noise() -> None:
    bench = DatamixLM(**SMALL)
    obj = bench.objective(bench.instances()[0], seed=0)
    related = obj.evaluate(_cfg({"near_a": 0.4, "near_b": 0.4, "scarce": 0.2}))
    noise = obj.evaluate(_cfg({"noise": 1.0}))
    assert 0.0 < related < noise
    assert noise > 2.0
    # the target's own proportions are not on offer: no source is the target
    assert all(n != "target" for n in obj.domains)


def test_common_random_numbers_same_seed_same_value_other_seed_other_data() -> None:
    bench = DatamixLM(**SMALL)
    inst = bench.instances()[1]
    cfg = _cfg({"near_a": 0.5, "easy": 0.5}, order=4)
    a = bench.objective(inst, 3).evaluate(cfg)
    b = pickle.loads(pickle.dumps(bench.objective(inst, 3))).evaluate(cfg)
    c = bench.objective(inst, 4).evaluate(cfg)
    assert a == b
    assert a != c


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=12, max_size=12), st.integers(4, 400))
def test_a_simplex_proposal_reaches_the_trainer_as_weights_summing_to_one(vec: list[float], n_docs: int) -> None:
    bench = DatamixLM(**SMALL)
    space = bench.space(bench.instances()[0])
    config = space.repair(space.decode(vec[: space.dims] + [0.5] * max(0, space.dims - len(vec))))
    space.validate(config)
    domains = tuple(config["mix"])
    w = mixture_weights(config, domains)
    assert math.isclose(float(w.sum()), 1.0, abs_tol=1e-12)
    assert (w >= 0).all()
    docs = allocate(w, n_docs)
    assert int(docs.sum()) == n_docs and (docs >= 0).all()
    assert np.all(np.abs(docs - w * n_docs) < 1.0)


def test_bad_mix_is_an_objective_error_and_options_are_checked() -> None:
    bench = DatamixLM(**SMALL)
    obj = bench.objective(bench.instances()[0], 0)
    with pytest.raises(ObjectiveError, match="must map exactly the domains"):
        obj.evaluate({"mix": {"easy": 1.0}, "order": 3, "discount": 0.5, "interpolation": 0.0})
    with pytest.raises(ObjectiveError, match="not all 0"):
        obj.evaluate(_cfg({"easy": 1.0}) | {"mix": {d: 0.0 for d in ts.DOMAINS}})
    with pytest.raises(BenchmarkError, match="learner"):
        get_benchmark("datamix-lm", {"learner": "transformer"})
    with pytest.raises(BenchmarkError, match="not a directory"):
        get_benchmark("datamix-lm", {"text_dirs": ["/nonexistent/texts"]})


def test_score_reports_regret_bpb_and_the_empty_run_bound() -> None:
    bench = DatamixLM(**SMALL)
    inst = bench.instances()[0]
    trials = (Trial(0, _cfg({"easy": 1.0}), 1.5, True, "base"), Trial(1, _cfg({"near_a": 1.0}), 0.8, True, "base"),
              Trial(2, _cfg({"noise": 1.0}), None, False, "base"))
    score = bench.score(inst, InnerResult(trials))
    assert score.primary == 0.8 == score.subscores["regret_bpb"]
    assert score.subscores["bpb"] > 0.8 + 2.0  # the Bayes bound of a sharpness-0.1 target is about 2.5 bpb
    assert score.subscores["auc"] == pytest.approx((1.5 + 0.8 + 0.8) / 3)
    assert bench.score(inst, InnerResult(())).primary == 8.0
    assert "regret" in bench.SCORE_TEXT and bench.describe()["bound"]["known_optimum"]


def test_real_text_directories_become_extra_domains(tmp_path: object) -> None:
    from pathlib import Path

    d = Path(str(tmp_path)) / "texts"
    d.mkdir()
    (d / "a.txt").write_bytes(b"the quick brown fox jumps over the lazy dog. " * 200)
    bench = DatamixLM(**SMALL, text_dirs=[str(d)])
    obj = bench.objective(bench.instances()[0], 0)
    assert obj.domains[-1] == "text0"
    mix = {n: 0.0 for n in obj.domains} | {"text0": 0.5, "near_a": 0.5}
    value = obj.evaluate({"mix": mix, "order": 3, "discount": 0.6, "interpolation": 0.0})
    assert math.isfinite(value) and value > 0


def test_neural_tier_needs_torch_or_trains() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(BenchmarkError, match="pip install"):
            DatamixLM(learner="neural")
        pytest.skip("torch is not installed: the neural tier refuses cleanly (checked)")
    bench = DatamixLM(learner="neural", **SMALL)
    obj = bench.objective(bench.instances()[0], 0)
    mix = {d: 0.0 for d in ts.DOMAINS} | {"near_a": 0.5, "near_b": 0.5}
    value = obj.evaluate({"mix": mix, "lr": 3e-3, "width": 64, "weight_decay": 1e-3, "batch_size": 64, "warmup": 0.1})
    assert math.isfinite(value) and value > 0
