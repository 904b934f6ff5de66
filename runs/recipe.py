"""Recipes: a whole run's history as one file, and back.

A recipe holds every record of the run (spec, manifest, mechanisms with
their sources, candidates, conformance reports, verdicts, evaluations and
events) as JSON, gzip-compressed when the file name ends in ``.gz``.
``bilevel import`` appends it to a store as a run that shows, compares and
replays like the original (its evaluations come along, so nothing is
recomputed). Sources are checked against their content hashes on import.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from bilevel.judge.manifest import Manifest, verify_manifest
from bilevel.mechanisms.contract import source_hash
from bilevel.runs.driver import judge_setup
from bilevel.runs.history import run_spec
from bilevel.runs.store import TABLES, Store, StoreError

FORMAT = "bilevel-recipe"
VERSION = 1
RUN_TABLES = tuple(t for t in TABLES if t != "sources")


class RecipeError(StoreError):
    """A recipe file is unreadable, of another format, or inconsistent; the message says which."""


def build_recipe(store: Store, run_id: str) -> dict[str, Any]:
    """The recipe of ``run_id`` as a JSON-able dict (called by ``bilevel export --recipe``)."""
    store.run(run_id)
    tables = {t: store.raw_rows(t, run_id) for t in RUN_TABLES}
    hashes = sorted({row[3] for row in tables["mechanisms"]})
    return {"format": FORMAT, "version": VERSION, "run_id": run_id, "tables": tables,
            "sources": [[h, store.source(h)] for h in hashes]}


def write_recipe(store: Store, run_id: str, path: Path) -> Path:
    text = json.dumps(build_recipe(store, run_id), sort_keys=True, allow_nan=True)
    path = Path(path)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read_recipe(path: Path) -> dict[str, Any]:
    """Read and check a recipe file (format, version, source hashes)."""
    try:
        raw = Path(path).read_bytes()
        text = gzip.decompress(raw).decode("utf-8") if raw[:2] == b"\x1f\x8b" else raw.decode("utf-8")
        data = json.loads(text)
    except (OSError, ValueError, EOFError) as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RecipeError(f"{path} is not a bilevel recipe (format {data.get('format') if isinstance(data, dict) else '?'!r})")
    if data.get("version") != VERSION:
        raise RecipeError(f"{path}: recipe version {data.get('version')} is not supported (this bilevel reads {VERSION})")
    for h, text in data["sources"]:
        if source_hash(text) != h:
            raise RecipeError(f"{path}: a mechanism source does not match its hash {h[:16]} (edited or corrupt)")
    if not data["tables"].get("runs"):
        raise RecipeError(f"{path}: the recipe holds no run record")
    return data


def import_recipe(store: Store, path: Path, new_id: str | None = None) -> tuple[str, str]:
    """Append the recipe's run to ``store``; returns (run id, a note on the judge).

    Refuses to overwrite a run of the same id (pass ``new_id`` to import a
    copy under another id).
    """
    data = read_recipe(path)
    run_id = new_id or str(data["run_id"])
    if run_id in store.run_ids():
        raise RecipeError(f"run {run_id} is already in {store.path}; import it under another id with --as NEW_ID")
    store.insert_raw("sources", data["sources"])
    for table in RUN_TABLES:
        rows = [[run_id, *row[1:]] for row in data["tables"].get(table, [])]
        store.insert_raw(table, rows)
    row = store.run(run_id)
    try:
        verify_manifest(Manifest.from_json(row.manifest), judge_setup(run_spec(store, run_id)).manifest)
        note = "judge matches this installation: the run compares and replays here"
    except Exception as exc:  # noqa: BLE001 - reported, not fatal: the record itself is intact
        note = f"WARNING: this installation's judge differs from the run's ({exc}); compare and report will refuse"
    return run_id, note
