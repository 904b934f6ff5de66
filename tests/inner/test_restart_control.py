"""The restart-only control (``restart_plateau``, ablation group "restart") really restarts the search.

Before, a restart point only mattered when it beat the incumbent, so the
control matched group A (the plain inner loop) on every pair. Now the trial
evaluated at a restart becomes the search centre whether or not it is better,
the greedy base proposer perturbs that centre, and the best-so-far still
scores the run.
"""

from __future__ import annotations

from bilevel.inner.loop import InnerSettings, run_inner
from bilevel.inner.records import InnerResult
from bilevel.judge.benchmarks.bbob import BBOBObjective
from bilevel.mechanisms.library import load_source

RESTART = [("restart_plateau", load_source("restart_plateau"))]
SETTINGS = InnerSettings(budget=60)


def _restarts(result: InnerResult) -> list[int]:
    return [t.index for t in result.trials if t.source == "mechanism:restart_plateau"]


def test_the_centre_moves_to_a_restart_point_that_does_not_beat_the_incumbent() -> None:
    objective = BBOBObjective(15, 5, 1)  # Rastrigin: many plateaus, restarts rarely beat the incumbent
    result = run_inner(objective, RESTART, SETTINGS, seed=4)
    losing = [i for i in _restarts(result) if not result.trials[i].kept and i + 1 < len(result.trials)]
    assert losing, "expected a restart that did not beat the incumbent"
    i = losing[0]
    restart, after = result.trials[i], result.trials[i + 1]
    incumbent = max((t for t in result.trials[:i] if t.kept), key=lambda t: t.index)
    assert after.source == "base:greedy"
    guides = [h for h in after.hooks if h.hook == "guide"]
    assert guides and guides[0].status == "ok"
    # Greedy changed one or two of five coordinates: the others are the restart point's, not the incumbent's.
    same_as_restart = [n for n in after.config if after.config[n] == restart.config[n]]
    same_as_incumbent = [n for n in after.config if after.config[n] == incumbent.config[n]]
    assert len(same_as_restart) >= 3 and not same_as_incumbent, (same_as_restart, same_as_incumbent)
    # The run is still scored by its best-so-far: the restart did not lower it.
    assert result.best_so_far[i] == result.best_so_far[i - 1]


def test_restart_only_differs_from_group_a() -> None:
    """Group A (no mechanisms) and the restart-only control, paired by instance and seed."""
    differ = 0
    for seed in range(4):
        objective = BBOBObjective(15, 5, 1 + seed)
        a = run_inner(objective, [], SETTINGS, seed=seed)
        r = run_inner(objective, RESTART, SETTINGS, seed=seed)
        restarts = _restarts(r)
        if not restarts:  # never on a plateau: the control is group A exactly
            assert [t.config for t in r.trials] == [t.config for t in a.trials]
            continue
        first = restarts[0]
        assert [t.config for t in r.trials[:first]] == [t.config for t in a.trials[:first]]  # same until then
        assert [t.config for t in r.trials[first + 1:]] != [t.config for t in a.trials[first + 1:]]
        differ += r.best_so_far[-1] != a.best_so_far[-1]
    assert differ >= 2, differ
