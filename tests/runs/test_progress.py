"""The live progress line (runs.progress): one line per stage off a terminal, counts of the current stage only."""

from __future__ import annotations

import io

from bilevel.runs.progress import Progress


def test_a_new_stage_starts_without_the_last_stages_count() -> None:
    out = io.StringIO()
    progress = Progress(out, every_s=0.0)
    progress.stage("g0: candidate 1/2 (add tabu)")
    for done in range(1, 9):
        progress.evaluation(done, 8)
    progress.stage("g0: candidate 2/2 (add trust_region)")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("g0: candidate 1/2 (add tabu) | inner runs: 0")
    assert "g0: candidate 1/2 (add tabu) [8/8] | inner runs: 8" in lines[-2]
    assert lines[-1].endswith("g0: candidate 2/2 (add trust_region) | inner runs: 8"), lines[-1]
    progress.evaluation(1, 48)
    assert out.getvalue().splitlines()[-1].endswith("(add trust_region) [1/48] | inner runs: 9")
