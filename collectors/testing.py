"""Test helpers: build span rows with the store's columns and load them into a store.

For tests and benchmarks of everything that reads the store (analytics, exporter,
alerts), so none of them hand-writes INSERT statements against the schema.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from infermeter.collectors._schema import EMBEDDING_COLUMNS, SPAN_COLUMNS, apply_migrations

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "embedding_record",
    "insert_embeddings",
    "insert_spans",
    "span_record",
    "store_in_memory",
]

_ids = itertools.count(1)
_EPOCH = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday (ISO week 2026-W47)


def span_record(
    *,
    start: datetime | None = None,
    duration_ms: float = 100.0,
    **fields: Any,
) -> dict[str, Any]:
    """One span row; unspecified columns are NULL, ids and times are filled in.

    ``start`` defaults to 2026-11-16 00:00 UTC; ``end_time`` follows from ``duration_ms``.
    A row is an entry span (one request) unless ``is_entry=False`` is passed.
    """
    unknown = set(fields) - {name for name, _ in SPAN_COLUMNS}
    if unknown:
        raise ValueError(f"unknown span columns: {sorted(unknown)}")
    n = next(_ids)
    start = start or _EPOCH
    row: dict[str, Any] = dict.fromkeys(name for name, _ in SPAN_COLUMNS)
    row.update(
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        name="handler",
        kind="INTERNAL",
        service_name="svc",
        start_time=start.replace(tzinfo=None),
        end_time=(start + timedelta(milliseconds=duration_ms)).replace(tzinfo=None),
        duration_ms=duration_ms,
        status_code="UNSET",
        is_entry=True,
        cold_start=False,
        throttled=False,
        attempt=1,
    )
    row.update(fields)
    for key in ("attributes", "resource_attributes"):
        if isinstance(row[key], Mapping):
            row[key] = json.dumps(row[key])
    return row


def embedding_record(vector: Iterable[float], **fields: Any) -> dict[str, Any]:
    """One ``embeddings`` row; ``time`` defaults to 2026-11-16 00:00 UTC."""
    values = [float(v) for v in vector]
    row: dict[str, Any] = dict.fromkeys(name for name, _ in EMBEDDING_COLUMNS)
    n = next(_ids)
    row.update(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", time=_EPOCH.replace(tzinfo=None),
        kind="query", dim=len(values), vector=values,
    )
    unknown = set(fields) - set(row)
    if unknown:
        raise ValueError(f"unknown embedding columns: {sorted(unknown)}")
    row.update(fields)
    return row


def _insert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: tuple[tuple[str, str], ...],
    rows: Iterable[Mapping[str, Any]],
) -> int:
    import pyarrow as pa

    rows = list(rows)
    if not rows:
        return 0
    names = [name for name, _ in columns]
    batch = pa.Table.from_pylist([{k: r.get(k) for k in names} for r in rows])
    con.register("_infermeter_batch", batch)
    try:
        select = ", ".join(f"CAST({name} AS {sql_type})" for name, sql_type in columns)
        con.execute(f"INSERT INTO {table} SELECT {select} FROM _infermeter_batch")  # noqa: S608
    finally:
        con.unregister("_infermeter_batch")
    return len(rows)


def insert_spans(con: duckdb.DuckDBPyConnection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append span rows (from :func:`span_record`) in one columnar insert."""
    return _insert(con, "spans", SPAN_COLUMNS, rows)


def insert_embeddings(con: duckdb.DuckDBPyConnection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append embedding rows (from :func:`embedding_record`) in one columnar insert."""
    return _insert(con, "embeddings", EMBEDDING_COLUMNS, rows)


def store_in_memory() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory store at the current schema version."""
    import duckdb

    con = duckdb.connect(":memory:")
    apply_migrations(con)
    return con
