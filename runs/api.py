"""The Python API: ``bilevel.run(spec)`` and ``bilevel.open_store(path)``.

``run`` does what ``bilevel run --spec FILE`` does and returns the summary the CLI prints, as a
dict. ``open_store`` reads an existing run store without ever writing to it (or creating one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bilevel.runs.commands import DEFAULT_STORE
from bilevel.runs.driver import execute, new_run, with_paths
from bilevel.runs.progress import Progress
from bilevel.runs.spec import RunSpec, SpecError, load_spec
from bilevel.runs.store import Store, StoreError, UnknownRun

__all__ = ["ReadStore", "SpecError", "StoreError", "UnknownRun", "open_store", "run"]


def _spec(spec: dict[str, Any] | str | Path) -> RunSpec:
    """A validated spec from a dict (the TOML structure) or a TOML path, with its paths made absolute as
    the CLI makes them (a user benchmark's ``workdir`` and ``[run] library`` relative to the spec file's
    folder, else the current one); bad input raises SpecError."""
    if isinstance(spec, str | Path):
        return with_paths(load_spec(Path(spec)), Path(spec))
    if not isinstance(spec, dict):
        raise SpecError(f"spec must be a dict (the sections of a TOML spec file) or a path to a TOML file, "
                        f"got {type(spec).__name__}")
    return with_paths(load_spec(None, spec, source="spec dict"), None)


def run(spec: dict[str, Any] | str | Path, *, store: str | Path | None = None, quiet: bool = True,
        yes: bool = False) -> dict[str, Any]:
    """Run the bilevel loop on ``spec`` to its end, like ``bilevel run --spec``; return its summary.

    ``store`` is the run store directory (default ``bilevel-runs``, as on the command line).
    With ``quiet=False`` the live progress line is written to stderr. The result has ``run_id``
    plus the keys of the CLI's ``--- summary ---`` block (``run``, ``kept``, ``val_improvement``, ...).
    Raises :class:`SpecError` for a malformed spec, before anything is recorded, and its subclass
    ``runs.estimate.CostRefused`` when a priced model's estimate is over $5 with no dollar cap
    (``yes=True`` goes ahead, as ``--yes`` does).
    """
    db, run_id = new_run(Path(store) if store is not None else DEFAULT_STORE, _spec(spec), yes=yes)
    try:
        if quiet:
            summary = execute(db, run_id)
        else:
            with Progress() as progress:
                summary = execute(db, run_id, progress=progress.stage, on_eval=progress.evaluation)
    finally:
        db.close()
    return {"run_id": run_id, **summary.fields}


class ReadStore:
    """A run store opened read-only; every method returns plain data (lists of dicts) or DataFrames."""

    def __init__(self, path: str | Path) -> None:
        self._store = Store.existing(Path(path), read_only=True,
                                     hint="create one with `bilevel run --store DIR` or bilevel.run(spec, store=DIR)")
        self.path = self._store.path

    def close(self) -> None:
        self._store.db.close()

    def __enter__(self) -> ReadStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _run_ids(self, run_id: str | None) -> list[str]:
        if run_id is None:
            return self._store.run_ids()
        self._store.run(run_id)  # UnknownRun names the recent runs
        return [run_id]

    def runs(self) -> list[dict[str, Any]]:
        """One dict per run, oldest first: id, created (unix time), benchmark, author, manifest hash,
        finished, and the summary fields of its last end (empty while unfinished)."""
        out = []
        for run_id in self._store.run_ids():
            row = self._store.run(run_id)
            ends = self._store.events(run_id, "run_end")
            summary = {k: v for k, v in ends[-1].items() if k not in ("key", "kind", "at")} if ends else {}
            summary.pop("run", None)
            out.append({**summary, "run_id": row.run_id, "created": row.created,
                        "benchmark": row.spec["run"]["benchmark"], "author": row.spec["run"]["author"],
                        "manifest_hash": row.manifest_hash, "finished": bool(ends)})
        return out

    def verdicts(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The judge's verdicts (one per judged candidate), of one run or of all; each has ``run_id``."""
        return [{"run_id": rid, **v} for rid in self._run_ids(run_id) for v in self._store.verdicts(rid)]

    def trials(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The stored evaluations: one inner run of a stack on one panel instance and seed, with its
        result's fields (``primary``, ``subscores``, ``n_trials``, ``best_so_far``, ...) at the top level."""
        out = []
        for rid in self._run_ids(run_id):
            for ev in self._store.evaluations(rid):
                out.append({**ev["result"], "run_id": rid, "stack_key": ev["stack_key"],
                            "instance": ev["instance"], "seed": ev["seed"]})
        return out

    def runs_frame(self) -> Any:
        """:meth:`runs` as a pandas DataFrame (needs pandas)."""
        return _frame(self.runs())

    def verdicts_frame(self, run_id: str | None = None) -> Any:
        """:meth:`verdicts` as a pandas DataFrame (needs pandas)."""
        return _frame(self.verdicts(run_id))

    def trials_frame(self, run_id: str | None = None) -> Any:
        """:meth:`trials` as a pandas DataFrame (needs pandas)."""
        return _frame(self.trials(run_id))


def _frame(rows: list[dict[str, Any]]) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("the *_frame() methods need pandas: pip install pandas "
                          "(or use runs() / verdicts() / trials(), which return plain dicts)") from exc
    return pd.DataFrame(rows)


def open_store(path: str | Path) -> ReadStore:
    """Open the run store at ``path`` (a ``--store`` directory or its ``bilevel.sqlite``) read-only.

    Raises :class:`StoreError` naming ``path`` if there is no store there; never creates one.
    """
    return ReadStore(path)

