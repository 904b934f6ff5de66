"""The manifest: a stable hash that moves with one byte of judge source, and clear mismatch errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import bilevel.judge as judge
from bilevel.judge.benchmarks.bbob import BBOB
from bilevel.judge.decision import Thresholds
from bilevel.judge.errors import ManifestMismatch
from bilevel.judge.manifest import Manifest, build_manifest, judge_source_hash, verify_manifest
from bilevel.judge.panels import Panels, PanelSpec, split_panels

JUDGE_DIR = Path(judge.__file__).resolve().parent


@pytest.fixture(scope="module")
def parts() -> tuple[BBOB, Panels, Thresholds]:
    bench = BBOB()
    return bench, split_panels(bench.instances(), PanelSpec()), Thresholds()


@pytest.fixture()
def judge_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "judge"
    shutil.copytree(JUDGE_DIR, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_hash_is_stable(parts: tuple[BBOB, Panels, Thresholds], judge_copy: Path) -> None:
    a = build_manifest(*parts)
    b = build_manifest(*parts)
    assert a == b and len(a.hash) == 64
    assert build_manifest(*parts, judge_dir=judge_copy).hash == a.hash  # a copy hashes the same
    verify_manifest(a, b)


def test_one_byte_of_judge_source_changes_the_hash(parts: tuple[BBOB, Panels, Thresholds],
                                                  judge_copy: Path) -> None:
    before = build_manifest(*parts, judge_dir=judge_copy)
    target = judge_copy / "decision.py"
    data = bytearray(target.read_bytes())
    data[-2] = data[-2] ^ 1
    target.write_bytes(bytes(data))
    after = build_manifest(*parts, judge_dir=judge_copy)
    assert after.judge_source_hash != before.judge_source_hash and after.hash != before.hash
    with pytest.raises(ManifestMismatch, match="judge source") as err:
        verify_manifest(before, after)
    assert "start a new run" in str(err.value) and "cannot continue" in str(err.value)


def test_new_and_renamed_files_count(judge_copy: Path) -> None:
    before = judge_source_hash(judge_copy)
    (judge_copy / "extra.py").write_text("x = 1\n")
    assert judge_source_hash(judge_copy) != before
    (judge_copy / "extra.py").rename(judge_copy / "extra2.py")
    renamed = judge_source_hash(judge_copy)
    (judge_copy / "notes.txt").write_text("not python")
    assert judge_source_hash(judge_copy) == renamed


def test_mismatch_names_the_part(parts: tuple[BBOB, Panels, Thresholds]) -> None:
    bench, panels, th = parts
    base = build_manifest(bench, panels, th)
    with pytest.raises(ManifestMismatch, match=r"thresholds \(promotion: 0.0 -> 0.1\)"):
        verify_manifest(base, build_manifest(bench, panels, Thresholds(promotion=0.1)))
    other_panels = split_panels(bench.instances(), PanelSpec(salt="x"))
    with pytest.raises(ManifestMismatch, match="panels"):
        verify_manifest(base, build_manifest(bench, other_panels, th))
    with pytest.raises(ManifestMismatch, match=r"benchmark \(n_instances, options differ\)"):
        verify_manifest(base, build_manifest(BBOB(instance_ids=range(1, 11)), panels, th))


def test_round_trip_and_tampered_record(parts: tuple[BBOB, Panels, Thresholds]) -> None:
    m = build_manifest(*parts)
    stored = json.loads(json.dumps(m.to_json()))
    assert Manifest.from_json(stored) == m
    stored["thresholds"]["promotion"] = 0.5
    with pytest.raises(ManifestMismatch, match="altered or corrupted"):
        Manifest.from_json(stored)
