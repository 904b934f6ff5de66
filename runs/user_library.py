"""Your own mechanism files in a run: ``--library FILE`` / ``[run] library = [...]`` and ``bilevel judge FILE...``.

Files are read and conformance-checked (in the sandbox, as the outer loop
checks an author's answer) before a run is recorded; their sources are
recorded with the run (a ``library`` event and the content-addressed
``sources`` table), so a resumed run uses what was checked, whatever happens
to the files later. Called by ``runs.cli`` and ``runs.driver``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bilevel.judge.conformance import check_conformance
from bilevel.judge.stack import Mechanism
from bilevel.runs.spec import SpecError
from bilevel.runs.store import RunRecorder, Store
from bilevel.sandbox import Limits


class LibraryError(SpecError):
    """A mechanism file cannot be read or fails the conformance check; the message says which and why."""


def library_paths(value: Any, base: Path | None) -> list[Path]:
    """``[run] library`` as paths (relative ones against ``base``, the spec file's folder)."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise LibraryError(f"[run] library must be a list of mechanism file paths, got {value!r}")
    root = base if base is not None else Path.cwd()
    return [Path(v) if Path(v).is_absolute() else (root / v).resolve() for v in value]


def read_mechanisms(paths: Sequence[Path], limits: Limits | None = None) -> list[Mechanism]:
    """One mechanism per file (named by the file's stem), each passing the sandbox's conformance check."""
    out: list[Mechanism] = []
    names: set[str] = set()
    for path in paths:
        try:
            source = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LibraryError(f"cannot read mechanism file {path}: {exc}") from exc
        name = Path(path).stem
        if name in names:
            raise LibraryError(f"two mechanism files are named {name!r}; rename one (the file name is the "
                               "mechanism's name)")
        names.add(name)
        report = check_conformance(source, limits=limits).to_json()
        if not report.get("ok"):
            raise LibraryError(f"mechanism file {path} fails the conformance check ({report.get('status')}): "
                               f"{report.get('message', '')}; see `bilevel sandbox-check {path}`")
        out.append(Mechanism(name, source))
    return out


def record_library(recorder: RunRecorder, mechanisms: Sequence[Mechanism]) -> None:
    """Keep the user's mechanisms with the run (called once, right after the run is recorded)."""
    if not mechanisms:
        return
    entries = [{"name": m.name, "source_hash": recorder.store.put_source(m.source)} for m in mechanisms]
    recorder.record_event("library", "library", {"mechanisms": entries})


def recorded_library(store: Store, run_id: str) -> list[Mechanism]:
    """The user's mechanisms recorded with a run (empty if none)."""
    events = store.events(run_id, "library")
    if not events:
        return []
    return [Mechanism(e["name"], store.source(e["source_hash"])) for e in events[0]["mechanisms"]]
