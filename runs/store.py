"""The run store: embedded SQLite (WAL), append-only, with content-addressed mechanism sources.

Nothing is ever updated or deleted (triggers refuse it). Every record has a
natural key and is written with ``INSERT OR IGNORE``, so a resumed run that
re-derives a record writes nothing twice. Each write commits at once: a kill
loses at most the evaluation in flight.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bilevel.judge.decision import Verdict
from bilevel.judge.panels import PanelEntry
from bilevel.judge.stack import Mechanism
from bilevel.outer.authors.base import Candidate

SCHEMA_VERSION = 1

TABLES = {
    "runs": "run_id TEXT PRIMARY KEY, created REAL, spec TEXT, manifest TEXT, manifest_hash TEXT",
    "sources": "hash TEXT PRIMARY KEY, text TEXT",
    "mechanisms": "run_id TEXT, mech_id TEXT, name TEXT, source_hash TEXT, author TEXT, generation INTEGER, "
                  "parents TEXT, PRIMARY KEY (run_id, mech_id)",
    "candidates": "run_id TEXT, generation INTEGER, idx INTEGER, stack_key TEXT, parent TEXT, author TEXT, "
                  "operation TEXT, data TEXT, PRIMARY KEY (run_id, generation, idx)",
    "conformance": "run_id TEXT, mech_id TEXT, ok INTEGER, status TEXT, report TEXT, PRIMARY KEY (run_id, mech_id)",
    "verdicts": "run_id TEXT, generation INTEGER, idx INTEGER, stack_key TEXT, keep INTEGER, stage TEXT, "
                "reason TEXT, data TEXT, PRIMARY KEY (run_id, generation, idx)",
    "evaluations": "run_id TEXT, key TEXT, stack_key TEXT, instance TEXT, seed INTEGER, result TEXT, "
                   "PRIMARY KEY (run_id, key)",
    "events": "run_id TEXT, key TEXT, seq INTEGER, kind TEXT, at REAL, data TEXT, PRIMARY KEY (run_id, key)",
    "llm_calls": "run_id TEXT, key TEXT, occurrence INTEGER, seq INTEGER, level TEXT, context TEXT, model TEXT, "
                 "tokens_in INTEGER, tokens_out INTEGER, cost_usd REAL, latency_s REAL, error TEXT, data TEXT, "
                 "PRIMARY KEY (run_id, key, occurrence)",
}


class StoreError(Exception):
    """The store cannot do what was asked; the message says why."""


class UnknownRun(StoreError):
    """No run with that id is in the store."""


@dataclass(frozen=True)
class RunRow:
    run_id: str
    created: float
    spec: dict[str, Any]
    manifest: dict[str, Any]
    manifest_hash: str


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


STORE_FILE = "bilevel.sqlite"  # the file of a ``--store DIR`` directory


class Store:
    """One SQLite file. Open once per process; the driver of a run is its only writer."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """Open (and create, unless ``read_only``) the store file ``path``; a read-only store never writes."""
        self.path = Path(path)
        if read_only:
            try:
                self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
                self.db.execute("SELECT COUNT(*) FROM runs").fetchone()
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path} is not a bilevel run store: {exc}") from exc
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._create()

    @classmethod
    def in_dir(cls, directory: Path) -> Store:
        """The store of a ``--store DIR`` directory (created if there is none)."""
        return cls(Path(directory) / STORE_FILE)

    @classmethod
    def existing(cls, path: Path, *, read_only: bool = False, hint: str = "") -> Store:
        """The store at ``path`` (a ``--store`` directory or its file), never created: StoreError
        naming where it looked when there is none (``hint`` says how to point elsewhere)."""
        file = Path(path) if Path(path).is_file() else Path(path) / STORE_FILE
        if not file.is_file():
            raise StoreError(f"no run store at {file}" + (f"; {hint}" if hint else ""))
        return cls(file, read_only=read_only)

    def _create(self) -> None:
        for name, cols in TABLES.items():
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")
            for op in ("UPDATE", "DELETE"):
                self.db.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {name}_no_{op.lower()} BEFORE {op} ON {name} "
                    f"BEGIN SELECT RAISE(ABORT, 'the run store is append-only: {op} on {name} refused'); END")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.db.close()

    def _insert(self, table: str, row: tuple[Any, ...]) -> None:
        marks = ",".join("?" * len(row))
        self.db.execute(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", row)

    # -- runs ----------------------------------------------------------------
    def create_run(self, run_id: str, spec: dict[str, Any], manifest: dict[str, Any], manifest_hash: str) -> None:
        self._insert("runs", (run_id, time.time(), _dumps(spec), _dumps(manifest), manifest_hash))

    def run(self, run_id: str) -> RunRow:
        row = self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            known = [r[0] for r in self.db.execute("SELECT run_id FROM runs ORDER BY created DESC LIMIT 5")]
            raise UnknownRun(f"no run {run_id!r} in {self.path}; recent runs: {', '.join(known) or 'none'}")
        return RunRow(row[0], row[1], json.loads(row[2]), json.loads(row[3]), row[4])

    def run_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT run_id FROM runs ORDER BY created")]

    # -- sources and mechanisms ---------------------------------------------
    def put_source(self, text: str) -> str:
        from bilevel.mechanisms.contract import source_hash

        h = source_hash(text)
        self._insert("sources", (h, text))
        return h

    def source(self, source_hash: str) -> str:
        row = self.db.execute("SELECT text FROM sources WHERE hash = ?", (source_hash,)).fetchone()
        if row is None:
            raise StoreError(f"no source with hash {source_hash}")
        return str(row[0])

    def mechanisms(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT mech_id, name, source_hash, author, generation, parents FROM mechanisms "
                               "WHERE run_id = ? ORDER BY generation, rowid", (run_id,))
        return [{"id": r[0], "name": r[1], "source_hash": r[2], "author": r[3], "generation": r[4],
                 "parents": json.loads(r[5])} for r in rows]

    def mechanism(self, run_id: str, mech_id: str) -> Mechanism:
        row = self.db.execute("SELECT name, source_hash FROM mechanisms WHERE run_id = ? AND mech_id = ?",
                              (run_id, mech_id)).fetchone()
        if row is None:
            raise StoreError(f"run {run_id} has no mechanism {mech_id}")
        return Mechanism(row[0], self.source(row[1]))

    def candidates(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT generation, idx, stack_key, parent, author, operation, data FROM candidates "
                               "WHERE run_id = ? ORDER BY generation, idx", (run_id,))
        return [{"generation": r[0], "index": r[1], "stack_key": r[2], "parent": r[3], "author": r[4],
                 "operation": r[5], **json.loads(r[6])} for r in rows]

    def verdicts(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT generation, idx, stack_key, data FROM verdicts WHERE run_id = ? "
                               "ORDER BY generation, idx", (run_id,))
        return [{"generation": r[0], "index": r[1], "stack_key": r[2], **json.loads(r[3])} for r in rows]

    def events(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT key, kind, at, data FROM events WHERE run_id = ?" + (" AND kind = ?" if kind else "")
        args: tuple[Any, ...] = (run_id, kind) if kind else (run_id,)
        rows = self.db.execute(sql + " ORDER BY seq", args)
        return [{"key": r[0], "kind": r[1], "at": r[2], **json.loads(r[3])} for r in rows]

    def evaluations(self, run_id: str) -> Iterator[dict[str, Any]]:
        for r in self.db.execute("SELECT stack_key, instance, seed, result FROM evaluations WHERE run_id = ?",
                                 (run_id,)):
            yield {"stack_key": r[0], "instance": r[1], "seed": r[2], "result": json.loads(r[3])}

    def llm_calls(self, run_id: str, level: str | None = None) -> list[dict[str, Any]]:
        """Every recorded model call of a run (``inner.chat.CallRecord`` JSON plus its outcome), in order."""
        sql = "SELECT data FROM llm_calls WHERE run_id = ?" + (" AND level = ?" if level else "")
        args: tuple[Any, ...] = (run_id, level) if level else (run_id,)
        return [json.loads(r[0]) for r in self.db.execute(sql + " ORDER BY seq", args)]

    def ledger(self, run_id: str) -> dict[str, dict[str, float]]:
        """Calls, failed calls, tokens in and out, prompt-cache writes and reads, dollars and model seconds
        per level."""
        rows = self.db.execute("SELECT level, COUNT(*), SUM(error != ''), SUM(tokens_in), SUM(tokens_out), "
                               "SUM(cost_usd), SUM(latency_s), "
                               "SUM(COALESCE(json_extract(data, '$.cache_write_tokens'), 0)), "
                               "SUM(COALESCE(json_extract(data, '$.cache_read_tokens'), 0)) "
                               "FROM llm_calls WHERE run_id = ? GROUP BY level ORDER BY level", (run_id,))
        return {r[0]: {"calls": r[1], "failed": r[2] or 0, "tokens_in": r[3] or 0, "tokens_out": r[4] or 0,
                       "cost_usd": r[5] or 0.0, "latency_s": r[6] or 0.0, "cache_write": r[7] or 0,
                       "cache_read": r[8] or 0} for r in rows}

    def count(self, table: str, run_id: str) -> int:
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r}")
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,)).fetchone()[0])

    # -- whole-run copies (recipes) -------------------------------------------
    def raw_rows(self, table: str, run_id: str) -> list[list[Any]]:
        """Every row of ``table`` for ``run_id``, column order as in :data:`TABLES` (for recipes)."""
        if table not in TABLES or table == "sources":
            raise StoreError(f"no per-run table {table!r}")
        return [list(r) for r in self.db.execute(f"SELECT * FROM {table} WHERE run_id = ? ORDER BY rowid",
                                                 (run_id,))]

    def insert_raw(self, table: str, rows: list[list[Any]]) -> None:
        """Append rows read by :meth:`raw_rows` (or sources as [hash, text]) in one transaction."""
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r}")
        with self.db:
            self.db.execute("BEGIN")
            for row in rows:
                self._insert(table, tuple(row))

    def recorder(self, run_id: str) -> RunRecorder:
        return RunRecorder(self, run_id)


class RunRecorder:
    """The outer loop's :class:`outer.loop.Recorder` and the evaluator's cache, for one run."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    def record_mechanism(self, mech: Mechanism, author: str, generation: int, parents: tuple[str, ...]) -> None:
        h = self.store.put_source(mech.source)
        self.store._insert("mechanisms", (self.run_id, mech.id, mech.name, h, author, generation,
                                          _dumps(list(parents))))

    def record_candidate(self, generation: int, index: int, candidate: Candidate, parent: str) -> None:
        self.store._insert("candidates", (self.run_id, generation, index, candidate.stack.key, parent,
                                          candidate.author, candidate.operation, _dumps(candidate.to_json())))

    def conformance(self, mech_id: str) -> dict[str, Any] | None:
        row = self.store.db.execute("SELECT report FROM conformance WHERE run_id = ? AND mech_id = ?",
                                    (self.run_id, mech_id)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def record_conformance(self, mech_id: str, report: dict[str, Any]) -> None:
        self.store._insert("conformance", (self.run_id, mech_id, int(bool(report.get("ok"))),
                                           str(report.get("status")), _dumps(report)))

    def record_verdict(self, generation: int, index: int, stack_key: str, verdict: Verdict) -> None:
        self.store._insert("verdicts", (self.run_id, generation, index, stack_key, int(verdict.keep),
                                        verdict.stage, verdict.reason, _dumps(verdict.to_json())))

    def record_event(self, key: str, kind: str, data: dict[str, Any]) -> None:
        seq = self.store.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?",
                                    (self.run_id,)).fetchone()[0]
        self.store._insert("events", (self.run_id, key, seq, kind, time.time(), _dumps(data)))

    def get_eval(self, key: str) -> dict[str, Any] | None:
        row = self.store.db.execute("SELECT result FROM evaluations WHERE run_id = ? AND key = ?",
                                    (self.run_id, key)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_eval(self, key: str, stack_key: str, entry: PanelEntry, result: dict[str, Any]) -> None:
        """Keep a finished evaluation; its LLM calls go to the ``llm_calls`` table, before it (a kill between
        the two writes leaves calls that the re-run evaluation records again, ignored)."""
        calls = result.get("llm_calls") or []
        where = {"key": key, "stack": stack_key, "instance": entry.instance, "seed": entry.seed}
        for call in calls:  # each call says which inner run made it (``bilevel transcripts``)
            self.record_llm_call({**call, "evaluation": where})
        if calls:
            result = {**result, "llm_calls": []}
        self.store._insert("evaluations", (self.run_id, key, stack_key, entry.instance, entry.seed, _dumps(result)))

    def record_llm_call(self, call: dict[str, Any]) -> None:
        """Keep one model call (``inner.chat.CallRecord`` JSON, maybe with an ``outcome``); idempotent."""
        seq = self.store.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM llm_calls WHERE run_id = ?",
                                    (self.run_id,)).fetchone()[0]
        self.store._insert("llm_calls", (self.run_id, call["key"], int(call["occurrence"]), seq, call["level"],
                                         call.get("context", ""), call.get("model", ""),
                                         int(call.get("tokens_in", 0)), int(call.get("tokens_out", 0)),
                                         float(call.get("cost_usd", 0.0)), float(call.get("latency_s", 0.0)),
                                         call.get("error", ""), _dumps(call)))

    def find_llm_call(self, key: str, occurrence: int) -> dict[str, Any] | None:
        """The recorded call with this request key and occurrence (a resumed run answers from it)."""
        row = self.store.db.execute("SELECT data FROM llm_calls WHERE run_id = ? AND key = ? AND occurrence = ?",
                                    (self.run_id, key, occurrence)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def ledger(self) -> dict[str, dict[str, float]]:
        return self.store.ledger(self.run_id)
