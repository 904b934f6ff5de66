"""The judge manifest: a hash of the judge's source, thresholds, panels and benchmark description.

A run builds the manifest when it starts, records it, and stamps its hash
into every verdict. When the run resumes it builds the manifest again and
calls :func:`verify_manifest`: any change to the judge's ``.py`` files, to
the thresholds, to the panels or to the benchmark (options, library
versions) stops the run, because a run cannot continue under a different
judge.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bilevel.judge.benchmarks.base import Benchmark
from bilevel.judge.decision import Thresholds
from bilevel.judge.errors import JudgeError, ManifestMismatch
from bilevel.judge.panels import Panels

PARTS = ("judge_source_hash", "thresholds", "panels", "benchmark")
_PART_WORDS = {"judge_source_hash": "judge source", "thresholds": "thresholds", "panels": "panels",
               "benchmark": "benchmark"}


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


def _content_hash(parts: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({k: parts[k] for k in PARTS}).encode()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What fixes the judge of a run; ``hash`` is sha256 of the canonical JSON of the other fields."""

    judge_source_hash: str
    thresholds: dict[str, Any]
    panels: dict[str, Any]
    benchmark: dict[str, Any]
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"judge_source_hash": self.judge_source_hash, "thresholds": self.thresholds,
                "panels": self.panels, "benchmark": self.benchmark, "hash": self.hash}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        """Read a recorded manifest; ManifestMismatch if its hash does not match its contents."""
        missing = [k for k in (*PARTS, "hash") if k not in d]
        if missing:
            raise JudgeError(f"a manifest record lacks {missing}")
        manifest = cls(str(d["judge_source_hash"]), _plain(d["thresholds"]), _plain(d["panels"]),
                       _plain(d["benchmark"]), str(d["hash"]))
        if _content_hash(manifest.to_json()) != manifest.hash:
            raise ManifestMismatch("the recorded manifest's hash does not match its contents: the record "
                                   "was altered or corrupted; the run cannot be trusted, start a new run")
        return manifest

    @property
    def short_hash(self) -> str:
        return self.hash[:12]


def build_manifest(benchmark: Benchmark, panels: Panels, thresholds: Thresholds,
                   judge_dir: Path | None = None) -> Manifest:
    """The manifest of the judge as installed now. Called when a run starts and when it resumes."""
    parts = {"judge_source_hash": judge_source_hash(judge_dir), "thresholds": _plain(thresholds.to_json()),
             "panels": _plain(panels.to_json()), "benchmark": _plain(benchmark.describe())}
    return Manifest(parts["judge_source_hash"], parts["thresholds"], parts["panels"], parts["benchmark"],
                    _content_hash(parts))


def _diff_keys(old: Any, new: Any) -> list[str]:
    """Top-level keys whose values differ (for dicts), to say what changed."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _describe_change(part: str, old: Any, new: Any) -> str:
    words = _PART_WORDS[part]
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
    if not changed:
        detail = "the manifest hashes differ though their parts agree (a corrupted record)"
    else:
        detail = "; ".join(_describe_change(p, getattr(recorded, p), getattr(current, p)) for p in changed)
    raise ManifestMismatch(
        f"the judge changed since this run started (manifest {recorded.short_hash} recorded, "
        f"{current.short_hash} now): {detail}. A run cannot continue under a different judge: start a "
        "new run, or restore the judge the run recorded to resume it.")
