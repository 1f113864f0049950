"""The store's one writer: columnar appends, the ingest checkpoint, consistent snapshots.

DuckDB allows one writer *process* per file; inside that process a ``StoreWriter``
appends Arrow tables with ``INSERT … BY NAME`` (by name so records written by an
older infermeter still load after a schema migration) and never row by row.

A snapshot is a copy of every table made inside one transaction on its own cursor:
DuckDB's MVCC lets the ingest cursor keep committing while the copy reads, so readers
get a consistent view and ingest is never blocked by them. The copy is written to a
temporary file and renamed into place, so a reader never sees a half-written one and a
reader still holding the previous snapshot keeps reading it undisturbed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.semconv import GEN_AI_EVALUATION_RESULT
from infermeter.collectors._schema import apply_migrations

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = [
    "SnapshotInfo",
    "StoreLockedError",
    "StoreWriter",
    "decode_batch",
    "decode_batch_events",
    "encode_batch",
    "is_lock_error",
    "precheck_store_file",
    "quote_path",
    "refuse_foreign",
]

_LENGTH: Final = struct.Struct("<I")
_SNAPSHOT_ALIAS: Final = "infermeter_snapshot"


class StoreLockedError(OSError):
    """Another process holds the store file (DuckDB allows one writer process)."""


def is_lock_error(exc: BaseException) -> bool:
    """Whether a DuckDB error means another process holds the file's lock."""
    return "lock" in str(exc).lower() and "conflicting" in str(exc).lower()


def quote_path(path: Path) -> str:
    """``path`` as a SQL string literal (ATTACH takes no parameters)."""
    return "'" + str(path).replace("'", "''") + "'"


def _ipc(table: pa.Table) -> Any:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def encode_batch(
    spans: pa.Table, embeddings: pa.Table, events: pa.Table | None = None
) -> list[Any]:
    """A write-ahead-log payload (as buffers for one ``writev``): the tables as Arrow IPC.

    Without events the layout is the original one (``u32 len | spans | embeddings``), so
    logs written before events existed still replay. With events a zero length comes
    first (an Arrow IPC stream is never empty) and every table but the last is prefixed
    by its length: ``u32 0 | u32 len | spans | u32 len | embeddings | events``.
    """
    first = _ipc(spans)
    if events is None or events.num_rows == 0:
        return [_LENGTH.pack(first.size), first, _ipc(embeddings)]
    second = _ipc(embeddings)
    return [
        _LENGTH.pack(0),
        _LENGTH.pack(first.size),
        first,
        _LENGTH.pack(second.size),
        second,
        _ipc(events),
    ]


def _read_ipc(view: memoryview) -> pa.Table:
    import pyarrow as pa

    return pa.ipc.open_stream(pa.py_buffer(view)).read_all()


def decode_batch(payload: bytes) -> tuple[pa.Table, pa.Table]:
    """The span and embedding tables of an :func:`encode_batch` payload."""
    spans, embeddings, _ = decode_batch_events(payload)
    return spans, embeddings


def decode_batch_events(payload: bytes) -> tuple[pa.Table, pa.Table, pa.Table | None]:
    """All tables of an :func:`encode_batch` payload (events None when it has none)."""
    view = memoryview(payload)
    (length,) = _LENGTH.unpack_from(payload, 0)
    start = _LENGTH.size
    if length:
        spans = _read_ipc(view[start : start + length])
        return spans, _read_ipc(view[start + length :]), None
    tables = []
    for _ in range(2):
        (length,) = _LENGTH.unpack_from(payload, start)
        start += _LENGTH.size
        tables.append(_read_ipc(view[start : start + length]))
        start += length
    return tables[0], tables[1], _read_ipc(view[start:])


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A published snapshot: where it is and what it holds."""

    path: Path
    created_at: datetime
    seq: int  # the write-ahead-log checkpoint it includes
    spans: int
    rows: dict[str, int] = field(default_factory=dict)  # of the append-only tables
    incremental: bool = False  # built from the previous snapshot plus new rows


class _StaleBaseError(Exception):
    """An incremental snapshot's counts do not match the store: copy in full instead."""


# Tables the collector only ever appends to (what incremental snapshots rely on).
_APPEND_ONLY: Final = frozenset({"spans", "embeddings", "events", "evaluations"})


def _tables(cur: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    rows = cur.execute(
        f"SELECT table_name FROM duckdb_tables() WHERE database_name = {database}"  # noqa: S608 — an alias or current_database()
        " AND schema_name = 'main' ORDER BY table_name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _count(cur: duckdb.DuckDBPyConnection, table: str) -> int:
    rows = cur.execute(f"SELECT count(*) FROM {table}").fetchall()  # noqa: S608 — catalog names
    return int(rows[0][0])


class StoreWriter:
    """The open, migrated store of the one writer process."""

    def __init__(
        self, path: Path, *, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        """Open (creating and migrating) the store. ``threads`` caps DuckDB's threads:
        the collector uses 1, leaving the other cores to request handling — measured,
        appends cost ~35% less CPU per row that way. ``memory_limit`` caps DuckDB's
        buffer pool (its default is 80% of RAM, which it fills with cached blocks)."""
        import duckdb

        self.path = path
        config: dict[str, str | bool | int | float | list[str]] = {
            "preserve_insertion_order": False
        }
        if threads is not None:
            config["threads"] = threads
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        try:
            self._con = duckdb.connect(str(path), config=config)
        except duckdb.IOException as exc:
            if is_lock_error(exc):
                raise StoreLockedError(f"store {path} is held by another process: {exc}") from None
            raise OSError(f"cannot open store {path}: {exc}") from None
        except duckdb.ConnectionException as exc:  # this process reads it read-only
            raise StoreLockedError(f"store {path} is open for reading here: {exc}") from None
        try:
            with contextlib.closing(self._con.cursor()) as migrator:
                refuse_foreign(migrator, path)
                apply_migrations(migrator)
                _refuse_snapshot(migrator, path)
        except BaseException:
            self._con.close()
            raise
        self._writer = self._con.cursor()
        # Which file this is: a store deleted or replaced under the collector must
        # never be written to (its commits would land nowhere anyone can read).
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)

    def missing(self) -> str | None:
        """Why the open store is no longer the file at :attr:`path`, or None."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (
                f"the store file {self.path} was removed while the collector ran; "
                "nothing more is acknowledged (restart the collector)"
            )
        except OSError as exc:
            return f"cannot check the store file {self.path}: {exc}"
        if (st.st_dev, st.st_ino) != self._identity:
            return (
                f"the store file {self.path} was replaced while the collector ran; "
                "nothing more is acknowledged (restart the collector)"
            )
        return None

    def set_checkpoint(self, wal_id: str, seq: int) -> None:
        """Set the write-ahead-log checkpoint of log ``wal_id`` (nothing else changes)."""
        cur = self._writer
        cur.execute(
            "INSERT OR REPLACE INTO ingest_checkpoint VALUES (?, ?, ?)",
            [wal_id, seq, datetime.now(UTC).replace(tzinfo=None)],
        )

    def abandon(self) -> None:
        """Drop a connection DuckDB has invalidated (nothing can be flushed through it)."""
        for closable in (self._writer, self._con):
            with contextlib.suppress(Exception):
                closable.close()

    def checkpoint(self, wal_id: str) -> int:
        """The highest write-ahead-log sequence number stored for log ``wal_id``."""
        rows = self._writer.execute(
            "SELECT seq FROM ingest_checkpoint WHERE wal_id = ?", [wal_id]
        ).fetchall()
        return int(rows[0][0]) if rows else 0

    def write(
        self,
        spans: pa.Table,
        embeddings: pa.Table,
        events: pa.Table | None = None,
        *,
        wal_id: str | None = None,
        seq: int | None = None,
    ) -> None:
        """Append the tables and (when given) advance the checkpoint, atomically."""
        cur = self._writer
        cur.execute("BEGIN TRANSACTION")
        try:
            _insert(cur, "spans", spans)
            _insert(cur, "embeddings", embeddings)
            if events is not None:
                _insert_events(cur, events)
            if wal_id is not None and seq is not None:
                cur.execute(
                    "INSERT OR REPLACE INTO ingest_checkpoint VALUES (?, ?, ?)",
                    [wal_id, seq, datetime.now(UTC).replace(tzinfo=None)],
                )
            cur.execute("COMMIT")
        except BaseException:
            _rollback(cur)
            raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction on the writer cursor (for loads bigger than one ``write``)."""
        cur = self._writer
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            _rollback(cur)
            raise
        cur.execute("COMMIT")

    def append(self, spans: pa.Table, embeddings: pa.Table, events: pa.Table | None = None) -> None:
        """Append inside the caller's :meth:`transaction`."""
        _insert(self._writer, "spans", spans)
        _insert(self._writer, "embeddings", embeddings)
        if events is not None:
            _insert_events(self._writer, events)

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on the store for the calling thread (DuckDB cursors are per thread)."""
        return self._con.cursor()

    def snapshot(
        self, dest: Path, wal_id: str | None = None, base: SnapshotInfo | None = None
    ) -> SnapshotInfo:
        """Copy every table, consistently, to ``dest`` (renamed into place when done).

        With ``base`` — an earlier snapshot of this store, taken while this writer has
        been its only writer (so ``spans`` and ``embeddings`` only grew) — the copy
        starts from that file and appends only the rows added since, found by DuckDB's
        ``rowid`` (the insertion index of an append-only table; the filter skips whole
        row groups). The row counts are checked in the same transaction; any mismatch
        falls back to a full copy.
        """
        tmp = dest.with_name(dest.name + ".tmp")
        if base is not None and base.path.exists() and base.rows:
            try:
                return self._copy(dest, tmp, wal_id, base)
            except _StaleBaseError:
                logging.getLogger("infermeter.collectors").warning(
                    "incremental snapshot did not add up; making a full copy"
                )
        return self._copy(dest, tmp, wal_id, None)

    def _copy(
        self, dest: Path, tmp: Path, wal_id: str | None, base: SnapshotInfo | None
    ) -> SnapshotInfo:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        if base is not None:
            shutil.copyfile(base.path, tmp)
        snap = _SNAPSHOT_ALIAS
        cur = self._con.cursor()
        try:
            cur.execute(f"ATTACH {quote_path(tmp)} AS {snap}")
            try:
                cur.execute("BEGIN TRANSACTION")
                tables = _tables(cur, "current_database()")
                rows: dict[str, int] = {}
                for table in tables:
                    start = base.rows.get(table) if base is not None else None
                    if start is not None and table in _APPEND_ONLY:
                        cur.execute(
                            f'INSERT INTO {snap}."{table}" SELECT * FROM main."{table}"'  # noqa: S608 — names from the catalog
                            " WHERE rowid >= ?",
                            [start],
                        )
                    else:
                        cur.execute(f'DROP TABLE IF EXISTS {snap}."{table}"')
                        cur.execute(
                            f'CREATE TABLE {snap}."{table}" AS SELECT * FROM main."{table}"'  # noqa: S608
                        )
                    if table in _APPEND_ONLY:
                        rows[table] = _count(cur, f'main."{table}"')
                        if _count(cur, f'{snap}."{table}"') != rows[table]:
                            raise _StaleBaseError
                for gone in set(_tables(cur, f"'{snap}'")) - set(tables):
                    cur.execute(f'DROP TABLE {snap}."{gone}"')
                seq = 0
                if wal_id is not None and "ingest_checkpoint" in tables:
                    found = cur.execute(
                        "SELECT seq FROM main.ingest_checkpoint WHERE wal_id = ?", [wal_id]
                    ).fetchall()
                    seq = int(found[0][0]) if found else 0
                cur.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    cur.execute("ROLLBACK")
                raise
            finally:
                cur.execute(f"DETACH {snap}")
        finally:
            cur.close()
        os.replace(tmp, dest)
        return SnapshotInfo(
            path=dest,
            created_at=datetime.now(UTC),
            seq=seq,
            spans=rows.get("spans", 0),
            rows=rows,
            incremental=base is not None,
        )

    def close(self) -> bool:
        """Checkpoint DuckDB's own log into the file and release the lock. False when
        the connection was unusable (what it took may not all be in the file)."""
        import duckdb

        try:
            self._writer.execute("CHECKPOINT")
        except duckdb.Error as exc:  # not fatal: DuckDB replays its log on the next open
            logging.getLogger("infermeter.collectors").warning("final checkpoint skipped: %s", exc)
            return not (isinstance(exc, duckdb.FatalException) or "invalidated" in str(exc))
        finally:
            with contextlib.suppress(duckdb.Error):
                self._writer.close()
                self._con.close()
        return True


def precheck_store_file(path: Path) -> None:
    """Refuse a DuckDB file that is no infermeter store before anything is created next
    to it (the writer checks again once it holds the file). Files DuckDB cannot open
    read-only now (held by a process, not DuckDB) are left to the writer to report."""
    import duckdb

    if not path.exists():
        return
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return
    try:
        refuse_foreign(con, path)
    finally:
        con.close()


def refuse_foreign(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Raise ``ValueError`` if the database behind ``con`` has tables but is no
    infermeter store (an empty database is fine: it becomes one)."""
    names = {
        str(row[0])
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    }
    if names and "schema_version" not in names:
        shown = ", ".join(sorted(names)[:5])
        raise ValueError(
            f"{path} is a DuckDB file but not an infermeter store (tables: {shown}); "
            "it is left untouched"
        )


def _refuse_snapshot(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # Snapshots for readers are plain table copies (no constraints): as a store, every
    # checkpoint update would fail, and ingest would retry forever.
    rows = con.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE database_name = current_database()"
        " AND table_name = 'ingest_checkpoint' AND constraint_type = 'PRIMARY KEY'"
    ).fetchall()
    if not rows[0][0]:
        raise ValueError(
            f"{path} is a read-only copy of a store (a reader's snapshot: its "
            "ingest_checkpoint table has no primary key), not a store to write; point "
            "--store at the original store"
        )


def _insert(cur: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    if rows.num_rows == 0:
        return
    view = f"_infermeter_{table}_batch"
    cur.register(view, rows)
    # If the insert fails the transaction is aborted and the view can only be dropped
    # after the ROLLBACK (_rollback does it); the caller must see the insert's error.
    cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {view}")  # noqa: S608 — fixed names
    cur.unregister(view)


def _insert_events(cur: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
    """Events go to ``events``; evaluation results among them also to ``evaluations``."""
    if rows.num_rows == 0:
        return
    view = "_infermeter_events_batch"
    cur.register(view, rows)
    cur.execute(f"INSERT INTO events BY NAME SELECT * FROM {view}")  # noqa: S608 — fixed names
    cur.execute(
        "INSERT INTO evaluations BY NAME SELECT time, trace_id, span_id, response_id,"  # noqa: S608 — fixed names
        " service_name, tenant, evaluation_name AS name, score_value, score_label,"
        f" explanation, source, attributes FROM {view}"
        " WHERE event_name = ? AND evaluation_name IS NOT NULL",
        [GEN_AI_EVALUATION_RESULT],
    )
    cur.unregister(view)


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    """Roll back and drop the batch views an aborted insert left registered."""
    import duckdb

    with contextlib.suppress(duckdb.Error):
        cur.execute("ROLLBACK")
    for table in ("spans", "embeddings", "events"):
        with contextlib.suppress(duckdb.Error):
            cur.unregister(f"_infermeter_{table}_batch")
