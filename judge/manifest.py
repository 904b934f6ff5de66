"""The judge manifest: a hash of everything that can change a score or a decision.

Its parts: the judge's source (one hash), every source file that can change
a score or a decision, one hash per file (``SOURCE_DIRS``: judge/, inner/,
sandbox/, mechanisms/ with spacekit and the built-ins; ``SOURCE_FILES``: the
outer evaluator and executors and the runs/ code that builds the judge,
pairs and caches evaluations), the versions of Python and of the libraries
that compute scores (``VERSIONED``), the thresholds, the panels, the
benchmark's description, and the data behind the benchmark (a content hash
of each file ``Benchmark.data_files()`` names).

A run builds the manifest when it starts, records it, and stamps its hash
into every verdict. When the run resumes (or is replayed) it builds the
manifest again and calls :func:`verify_manifest`: any change stops the run,
naming what changed (``manifest: inner/loop.py changed``), because a run
cannot continue under a different judge.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bilevel.judge.benchmarks.base import Benchmark
from bilevel.judge.decision import Thresholds
from bilevel.judge.errors import JudgeError, ManifestMismatch
from bilevel.judge.panels import Panels

PARTS = ("judge_source_hash", "thresholds", "panels", "benchmark", "sources", "versions", "data")
_OLD_PARTS = PARTS[:4]  # manifests recorded before sources, versions and data were covered
_PART_WORDS = {"judge_source_hash": "judge source", "thresholds": "thresholds", "panels": "panels",
               "benchmark": "benchmark", "sources": "sources", "versions": "versions", "data": "benchmark data"}
SOURCE_DIRS = ("judge", "inner", "sandbox", "mechanisms")
SOURCE_FILES = ("outer/evaluator.py", "outer/executors.py", "runs/driver.py", "runs/store.py",
                "runs/history.py", "runs/summary_numbers.py")
VERSIONED = ("numpy", "coco-experiment", "optuna", "RestrictedPython")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, ASCII only: the same text for the same data on every machine."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _plain(value: Any) -> Any:
    """The value as JSON would give it back (tuples become lists), so a round trip compares equal."""
    return json.loads(canonical_json(value))


def default_judge_dir() -> Path:
    """The installed ``judge`` package directory."""
    return Path(__file__).resolve().parent


def judge_source_hash(judge_dir: Path | None = None) -> str:
    """sha256 over the sorted relative paths and bytes of every ``.py`` file under ``judge_dir``."""
    root = (judge_dir or default_judge_dir()).resolve()
    if not root.is_dir():
        raise JudgeError(f"judge directory {root} does not exist")
    h = hashlib.sha256()
    files = sorted((p for p in root.rglob("*.py") if p.is_file()), key=lambda p: p.relative_to(root).as_posix())
    for path in files:
        rel = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        h.update(len(rel).to_bytes(8, "big") + rel + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def default_root() -> Path:
    """The folder holding the installed rooms (judge/, inner/, ...)."""
    return default_judge_dir().parent


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_hashes(root: Path | None = None) -> dict[str, str]:
    """sha256 of every covered source file, by its path relative to ``root`` (``"inner/loop.py"``)."""
    base = (root or default_root()).resolve()
    files = [p for d in SOURCE_DIRS for p in (base / d).rglob("*.py") if p.is_file()]
    files += [base / f for f in SOURCE_FILES if (base / f).is_file()]
    return {p.relative_to(base).as_posix(): _file_hash(p) for p in sorted(set(files))}


def versions() -> dict[str, str]:
    """The versions of Python and of the libraries that compute scores ("absent" if not installed)."""
    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def data_hashes(benchmark: Benchmark) -> dict[str, str]:
    """sha256 of each data file the benchmark declares (``Benchmark.data_files``), by path."""
    out: dict[str, str] = {}
    for path in benchmark.data_files():
        p = Path(path)
        out[str(p)] = _file_hash(p) if p.is_file() else "missing"
    return out


def _content_hash(parts: dict[str, Any]) -> str:
    names = PARTS if "sources" in parts else _OLD_PARTS
    return hashlib.sha256(canonical_json({k: parts[k] for k in names}).encode()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What fixes the judge of a run; ``hash`` is sha256 of the canonical JSON of the other fields."""

    judge_source_hash: str
    thresholds: dict[str, Any]
    panels: dict[str, Any]
    benchmark: dict[str, Any]
    hash: str
    sources: dict[str, str] | None = None  # None: a record from before sources were covered
    versions: dict[str, str] | None = None
    data: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"judge_source_hash": self.judge_source_hash, "thresholds": self.thresholds,
                             "panels": self.panels, "benchmark": self.benchmark, "hash": self.hash}
        if self.sources is not None:
            d.update({"sources": self.sources, "versions": self.versions, "data": self.data})
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        """Read a recorded manifest; ManifestMismatch if its hash does not match its contents."""
        missing = [k for k in (*(PARTS if "sources" in d else _OLD_PARTS), "hash") if k not in d]
        if missing:
            raise JudgeError(f"a manifest record lacks {missing}")
        extra = [_plain(d[k]) if k in d else None for k in ("sources", "versions", "data")]
        manifest = cls(str(d["judge_source_hash"]), _plain(d["thresholds"]), _plain(d["panels"]),
                       _plain(d["benchmark"]), str(d["hash"]), *extra)
        if _content_hash(manifest.to_json()) != manifest.hash:
            raise ManifestMismatch("the recorded manifest's hash does not match its contents: the record "
                                   "was altered or corrupted; the run cannot be trusted, start a new run")
        return manifest

    @property
    def short_hash(self) -> str:
        return self.hash[:12]


def build_manifest(benchmark: Benchmark, panels: Panels, thresholds: Thresholds,
                   judge_dir: Path | None = None, root: Path | None = None) -> Manifest:
    """The manifest of the judge as installed now (``root``: the folder of the rooms, for tests).
    Called when a run starts and when it resumes or is replayed."""
    parts = {"judge_source_hash": judge_source_hash(judge_dir), "thresholds": _plain(thresholds.to_json()),
             "panels": _plain(panels.to_json()), "benchmark": _plain(benchmark.describe()),
             "sources": source_hashes(root), "versions": versions(), "data": data_hashes(benchmark)}
    return Manifest(parts["judge_source_hash"], parts["thresholds"], parts["panels"], parts["benchmark"],
                    _content_hash(parts), parts["sources"], parts["versions"], parts["data"])


def _diff_keys(old: Any, new: Any) -> list[str]:
    """Top-level keys whose values differ (for dicts), to say what changed."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _file_changes(old: Any, new: Any) -> str:
    """``manifest: inner/loop.py changed`` for each file whose hash differs, was added or removed."""
    old, new = old or {}, new or {}
    words = []
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            what = "added" if path not in old else "removed" if path not in new else "changed"
            words.append(f"manifest: {path} {what}")
    return ", ".join(words) or "manifest: no file list recorded"


def _describe_change(part: str, old: Any, new: Any) -> str:
    words = _PART_WORDS[part]
    if part in ("sources", "data"):
        return f"{words} ({_file_changes(old, new)})"
    if part == "versions":
        changes = [f"manifest: {k} {(old or {}).get(k)} -> {(new or {}).get(k)}" for k in _diff_keys(old or {}, new)]
        return f"{words} ({', '.join(changes) or 'not recorded'})"
    if part == "judge_source_hash":
        return f"{words} (sha256 {old[:12]}... recorded, {new[:12]}... now)"
    if part == "panels" and isinstance(old, dict) and isinstance(new, dict):
        keys = _diff_keys(old, new)
        return f"{words} ({', '.join(keys) or 'entries'} differ)"
    if part == "thresholds":
        changes = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in _diff_keys(old, new)]
        return f"{words} ({'; '.join(changes)})"
    keys = _diff_keys(old, new)
    return f"{words} ({', '.join(keys) or 'contents'} differ)"


def verify_manifest(recorded: Manifest, current: Manifest) -> None:
    """ManifestMismatch, saying which parts changed and what to do, unless the two judges are the same.
    Called when a run resumes, before any trial or verdict."""
    changed = [p for p in PARTS if getattr(recorded, p) != getattr(current, p)]
    if not changed and recorded.hash == current.hash:
        return
    if recorded.sources is None:
        detail = ("the run was recorded by an older bilevel whose manifest did not cover sources, versions "
                  "and data, so nothing proves they are unchanged")
    elif not changed:
        detail = "the manifest hashes differ though their parts agree (a corrupted record)"
    else:
        detail = "; ".join(_describe_change(p, getattr(recorded, p), getattr(current, p)) for p in changed)
    raise ManifestMismatch(
        f"the judge changed since this run started (manifest {recorded.short_hash} recorded, "
        f"{current.short_hash} now): {detail}. A run cannot continue under a different judge: start a "
        "new run, or restore the judge the run recorded to resume it.")
