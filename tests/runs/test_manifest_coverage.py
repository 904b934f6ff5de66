"""The complete manifest: a change to any covered source, a library version or a benchmark's data file
refuses the run, naming what changed; resume and replay refuse before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bilevel.judge import manifest as mf
from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.benchmarks.bbob import BBOB
from bilevel.judge.decision import Thresholds
from bilevel.judge.errors import ManifestMismatch
from bilevel.judge.manifest import Manifest, build_manifest, verify_manifest
from bilevel.judge.panels import Panels, PanelSpec, split_panels
from bilevel.runs.cli import main
from bilevel.runs.driver import create_run, execute
from bilevel.runs.spec import load_spec
from bilevel.runs.store import Store

ROOT = mf.default_root()
SPEC = Path(__file__).parent.parent / "data" / "calibrate_small.toml"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("rooms")
    for d in mf.SOURCE_DIRS:
        shutil.copytree(ROOT / d, dest / d, ignore=shutil.ignore_patterns("__pycache__"))
    for f in mf.SOURCE_FILES:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / f, dest / f)
    return dest


@pytest.fixture(scope="module")
def parts() -> tuple[BBOB, Panels, Thresholds]:
    bench = BBOB(functions=[1], dimensions=[2], instance_ids=list(range(1, 9)))
    return bench, split_panels(bench.instances(), PanelSpec(2, 2, 2, 1)), Thresholds()


COVERED = ["inner/loop.py", "inner/proposers.py", "sandbox/policy.py", "mechanisms/spacekit.py",
           "mechanisms/builtin/tabu.py", "judge/stats.py", "outer/evaluator.py", "outer/executors.py",
           "runs/store.py", "runs/driver.py"]


@pytest.mark.parametrize("path", COVERED)
def test_a_change_in_each_covered_source_is_named(path: str, root: Path,
                                                  parts: tuple[BBOB, Panels, Thresholds]) -> None:
    before = build_manifest(*parts, root=root)
    target = root / path
    original = target.read_bytes()
    try:
        target.write_bytes(original.replace(b"<", b"<=", 1) if b"<" in original else original + b"\n#")
        after = build_manifest(*parts, root=root)
    finally:
        target.write_bytes(original)
    with pytest.raises(ManifestMismatch, match=f"manifest: {path} changed"):
        verify_manifest(before, after)
    assert build_manifest(*parts, root=root) == before


def test_an_added_mechanism_file_and_a_library_version_are_named(root: Path, parts: tuple[BBOB, Panels, Thresholds],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = build_manifest(*parts, root=root)
    extra = root / "mechanisms" / "builtin" / "new_one.py"
    extra.write_text("x = 1\n")
    try:
        with pytest.raises(ManifestMismatch, match="manifest: mechanisms/builtin/new_one.py added"):
            verify_manifest(before, build_manifest(*parts, root=root))
    finally:
        extra.unlink()
    real = mf.metadata.version
    monkeypatch.setattr(mf.metadata, "version", lambda d: "0.0.1" if d == "optuna" else real(d))
    with pytest.raises(ManifestMismatch, match=r"manifest: optuna \S+ -> 0.0.1"):
        verify_manifest(before, build_manifest(*parts, root=root))
    assert set(before.versions or {}) == {"python", "numpy", "coco-experiment", "optuna", "RestrictedPython"}


def test_benchmark_data_files_are_hashed(tmp_path: Path) -> None:
    text = tmp_path / "texts"
    text.mkdir()
    (text / "a.txt").write_text("some real text " * 100)
    bench = get_benchmark("datamix-lm", {"text_dirs": [str(text)], "sharpness": [0.1], "variants": 6})
    panels, th = split_panels(bench.instances(), PanelSpec(1, 2, 2, 1)), Thresholds()
    before = build_manifest(bench, panels, th)
    (text / "a.txt").write_text("other real text " * 100)
    with pytest.raises(ManifestMismatch, match=r"benchmark data \(manifest: \S+a.txt changed\)"):
        verify_manifest(before, build_manifest(bench, panels, th))
    script = tmp_path / "bench.py"
    script.write_text("print(1)\n")
    cmd = get_benchmark("command", {"command": f"python {script}", "params": ["x:float:0:1"]})
    assert cmd.data_files() == [str(script.resolve())]


def test_old_records_still_read_and_are_refused_with_a_reason(parts: tuple[BBOB, Panels, Thresholds]) -> None:
    m = build_manifest(*parts)
    old = {k: v for k, v in m.to_json().items() if k not in ("sources", "versions", "data")}
    old["hash"] = mf._content_hash(old)
    recorded = Manifest.from_json(old)
    assert recorded.sources is None
    with pytest.raises(ManifestMismatch, match="older bilevel"):
        verify_manifest(recorded, m)


def _edited_root(root: Path, tmp_path: Path) -> Path:
    edited = tmp_path / "edited"
    shutil.copytree(root, edited)
    loop = edited / "inner" / "loop.py"
    loop.write_text(loop.read_text() + "\n# the keep rule changed\n")
    return edited


def test_resume_and_replay_refuse_after_a_source_change(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(mf, "default_root", lambda: root)
    store = Store.in_dir(tmp_path / "store")
    run_id = create_run(store, load_spec(SPEC, {"run": {"benchmark": "null", "generations": 1}}))
    edited = _edited_root(root, tmp_path)
    monkeypatch.setattr(mf, "default_root", lambda: edited)
    with pytest.raises(ManifestMismatch, match="manifest: inner/loop.py changed"):
        execute(store, run_id)
    assert store.verdicts(run_id) == []  # refused before any work
    assert main(["replay", run_id, "--store", str(tmp_path / "store")]) == 2
    assert "manifest: inner/loop.py changed" in capsys.readouterr().err
