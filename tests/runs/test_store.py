from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.authors.base import Candidate
from bilevel.runs.store import Store, StoreError, UnknownRun

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.in_dir(tmp_path)
    s.create_run("r1", {"run": {"benchmark": "bbob"}}, {"hash": "h"}, "h")
    return s


def test_unknown_run_names_recent_runs(store: Store) -> None:
    with pytest.raises(UnknownRun, match="recent runs: r1"):
        store.run("nope")


@given(source=st.text(min_size=1, max_size=200))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_sources_round_trip_and_are_content_addressed(store: Store, source: str) -> None:
    h = store.put_source(source)
    assert store.put_source(source) == h
    assert store.source(h) == source


@given(result=st.dictionaries(st.text(max_size=8), json_values, max_size=5), seed=st.integers(0, 10**6))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_evaluations_round_trip(store: Store, result: dict, seed: int) -> None:
    rec = store.recorder("r1")
    key = f"k{seed}-{hash(str(result))}"
    rec.put_eval(key, "stack", PanelEntry("bbob-f1-d2-i1", "f1", seed), result)
    assert rec.get_eval(key) == result


def test_store_is_append_only(store: Store) -> None:
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE runs SET manifest_hash = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM runs")
    assert store.run("r1").manifest_hash == "h"


def test_records_are_idempotent(store: Store) -> None:
    rec = store.recorder("r1")
    mech = Mechanism("tabu", "def review(ctx, state, candidate):\n    return None\n")
    cand = Candidate(Stack((mech,)), "add tabu", "offline", (mech,))
    for _ in range(2):
        rec.record_mechanism(mech, "offline", 0, ())
        rec.record_candidate(0, 0, cand, "base")
        rec.record_event("gen:0:start", "generation_start", {"generation": 0})
        rec.record_conformance(mech.id, {"ok": True, "status": "ok"})
    assert store.count("mechanisms", "r1") == 1
    assert store.count("candidates", "r1") == 1
    assert store.count("events", "r1") == 1
    assert store.mechanism("r1", mech.id) == mech
    assert rec.conformance(mech.id) == {"ok": True, "status": "ok"}
    assert store.candidates("r1")[0]["operation"] == "add tabu"


def test_missing_source(store: Store) -> None:
    with pytest.raises(StoreError, match="no source"):
        store.source("0" * 64)
