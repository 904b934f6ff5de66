"""`lineage --diff` of a mutation shows only what the mutation changed (issue 13)."""

from __future__ import annotations

from pathlib import Path

from bilevel.judge.stack import Mechanism, Stack
from bilevel.mechanisms.library import load_source
from bilevel.outer.authors.base import Candidate
from bilevel.runs.driver import create_run, inner_settings
from bilevel.runs.lineage import stack_diff
from bilevel.runs.spec import load_spec
from bilevel.runs.store import RunRecorder, Store

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"


def _run_with_tabu_added(tmp_path: Path) -> tuple[Store, str, RunRecorder, Mechanism, Stack, Stack]:
    """A recorded run whose generation 0 added tabu to the baseline: (store, run id, recorder, tabu,
    baseline stack, tabu's stack)."""
    spec = load_spec(SPEC)
    store = Store.in_dir(tmp_path)
    run_id = create_run(store, spec, preflight=False)
    rec = store.recorder(run_id)
    search = inner_settings(spec).search
    tabu = Mechanism("tabu", load_source("tabu"))
    rec.record_mechanism(tabu, "builtin", -1, ())
    baseline, first = Stack((), search), Stack((tabu,), search)
    rec.record_candidate(0, 0, Candidate(first, "add tabu", "offline", (tabu,)), baseline.key)
    return store, run_id, rec, tabu, baseline, first


def test_the_diff_of_a_mutation_is_only_the_changed_lines(tmp_path: Path) -> None:
    store, run_id, rec, tabu, _, first = _run_with_tabu_added(tmp_path)
    mutant = Mechanism("tabu'abc", tabu.source.replace("TABU_SIZE = 20", "TABU_SIZE = 31"))
    rec.record_mechanism(mutant, "offline", 1, (tabu.id,))
    second = Stack((mutant,), first.search)
    rec.record_candidate(1, 0, Candidate(second, "mutate tabu: TABU_SIZE 20 -> 31", "offline", (mutant,),
                                         (tabu.id,)), first.key)
    diff = stack_diff(store, run_id, second.key[:10])
    changed = [line for line in diff.splitlines() if line and line[0] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-TABU_SIZE = 20", "+TABU_SIZE = 31"], diff
    assert "--- a/tabu" in diff and "+++ b/tabu'abc" in diff and "/dev/null" not in diff


def test_the_diff_of_a_drop_back_to_the_baseline_shows_the_drop_not_the_baseline(tmp_path: Path) -> None:
    store, run_id, rec, _, baseline, first = _run_with_tabu_added(tmp_path)
    rec.record_candidate(1, 0, Candidate(baseline, "drop tabu", "offline"), first.key)
    diff = stack_diff(store, run_id, baseline.key[:8])  # the drop's id is the baseline's
    assert f"parent [{first.key[:8]}]" in diff and "operation: drop tabu (author offline, generation 1)" in diff
    assert "--- a/tabu" in diff and "+++ /dev/null" in diff and "(no source or config difference)" not in diff
