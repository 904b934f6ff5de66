"""The null benchmark, `bilevel calibrate`, and the outer loop's confirmation of a generation's winner."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from judge_evidence import evidence_from_diffs as _evidence

from bilevel.inner.records import InnerResult
from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.decision import Thresholds, Verdict, confirm, decide
from bilevel.judge.errors import BenchmarkError
from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.authors.base import Candidate
from bilevel.outer.loop import OuterLoop, OuterSettings
from bilevel.runs.calibrate import clopper_pearson
from bilevel.runs.cli import main

SPEC = Path(__file__).parent.parent / "data" / "calibrate_small.toml"


def test_clopper_pearson_fixed_values() -> None:
    low, high = clopper_pearson(0, 20)
    assert low == 0.0 and math.isclose(high, 1 - 0.025 ** (1 / 20), rel_tol=1e-6)  # 0.1684
    low, high = clopper_pearson(1, 10)
    assert (round(low, 4), round(high, 4)) == (0.0025, 0.4450)
    assert clopper_pearson(5, 5)[1] == 1.0
    with pytest.raises(ValueError):
        clopper_pearson(3, 2)


def test_null_values_do_not_depend_on_the_config() -> None:
    bench = get_benchmark("null", {"groups": 3, "instances_per_group": 2, "dimension": 2})
    inst = bench.instances()[4]
    assert (inst.key, inst.group, len(bench.instances())) == ("null-g2-i0", "g2", 6)

    def draws(x: float, seed: int) -> list[float]:
        obj = bench.objective(inst, seed)
        return [obj.evaluate({"x0": x, "x1": x}) for _ in range(400)]

    a, b = draws(0.1, 1), draws(0.9, 2)
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    assert abs(mean_a - mean_b) < 0.3  # same distribution (sd of the difference ~0.07)
    assert len(set(a)) == len(a)  # a repeated config gets a fresh draw: nothing to exploit
    assert draws(0.1, 1) == a  # seeded
    with pytest.raises(BenchmarkError, match="groups"):
        get_benchmark("null", {"groups": 0})


def test_null_score_is_the_mean_trial_value() -> None:
    bench = get_benchmark("null", {"groups": 2, "instances_per_group": 2})
    inst = bench.instances()[0]
    trials = [{"index": i, "config": {}, "score": s, "kept": False, "source": "x"} for i, s in
              enumerate([1.0, None, 3.0])]
    result = InnerResult.from_json({"trials": trials, "mechanisms": []})
    assert bench.score(inst, result).primary == 2.0


def test_calibrate_prints_the_false_keep_rate_on_the_null_benchmark(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--runs", "2", "--spec", str(SPEC), "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line and not line.startswith("["))
    rate = lines["false_keep_rate"]
    kept = lines["runs_that_kept"]
    assert rate.startswith(("0.000 [0.000, 0.842]", "0.500 [0.013, 0.987]", "1.000 [0.158, 1.000]"))
    assert "unit: outer run" in rate
    assert (kept == "none") == rate.startswith("0.000")
    assert out.count("run: null-") == 2


class _Recorder:
    def __init__(self) -> None:
        self.verdicts: dict[tuple[int, int], Verdict] = {}

    def record_verdict(self, generation: int, index: int, stack_key: str, verdict: Verdict) -> None:
        self.verdicts[(generation, index)] = verdict


class _Judge:
    """Passes every candidate on validation with its own mean; confirms only when told to."""

    manifest_hash = "m"

    def __init__(self, holds: bool) -> None:
        self.holds = holds
        self.confirmed: list[str] = []

    @property
    def confirms(self) -> bool:
        return True

    def confirm(self, generation: int, candidate: Stack, incumbent: Stack, selection: Verdict) -> Verdict:
        self.confirmed.append(candidate.mechanisms[0].name)
        diffs = [0.3] * 8 if self.holds else [0.0, 0.01, -0.01, 0.0] * 2
        return confirm(_evidence(diffs), selection, Thresholds(n_boot=200), "m")


def _passed(name: str, diffs: list[float]) -> tuple[Candidate, Verdict]:
    stack = Stack((Mechanism(name, f"# {name}\n"),))
    return Candidate(stack, f"add {name}", "test"), decide(_evidence(diffs), Thresholds(n_boot=200), "m")


@pytest.mark.parametrize("holds", [True, False])
def test_only_the_winner_is_confirmed_and_kept_only_if_it_holds(holds: bool) -> None:
    loop: Any = OuterLoop.__new__(OuterLoop)
    loop.judge, loop.recorder, loop.progress = _Judge(holds), _Recorder(), lambda _m: None
    loop.settings = OuterSettings(generations=1)
    loop.state = type("S", (), {"incumbent": Stack(), "lineage": []})()
    (a, va), (b, vb) = _passed("a", [0.2] * 8), _passed("b", [0.4] * 8)
    assert va.keep and vb.keep
    entries: dict[int, dict[str, Any]] = {0: {}, 1: {}}  # the lineage lines the author reads
    kept = loop._confirm(0, [(0, a, va), (1, b, vb)], entries)
    assert loop.judge.confirmed == ["b"]  # only the larger validation improvement is confirmed
    assert (kept is b) == holds
    assert loop.recorder.verdicts[(0, 1)].stage == "confirmation"
    assert loop.recorder.verdicts[(0, 1)].keep == holds
    assert loop.recorder.verdicts[(0, 0)] == va  # the other passer keeps its validation verdict
    assert entries[0]["outcome"].startswith("passed, not adopted")
    assert entries[1]["outcome"] == ("kept" if holds else "rejected: passed validation but not confirmed on fresh pairs")
