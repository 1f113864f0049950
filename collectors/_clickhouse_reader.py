"""Read a ClickHouse store: the window's spans pulled as Arrow into an in-memory DuckDB.

Step 1 of the scale-out design, exact by construction: ``infermeter_spans`` (and
``infermeter_embeddings``, ``infermeter_events``) already have the store's column
contract, so the reader pulls the span rows of the asked window — only the contract
columns, the time range pushed down to ``otel_traces``' partition key — and loads them
into the ``spans`` / ``embeddings`` tables of a fresh in-memory DuckDB connection (every
event into ``events``, the evaluation results among them also into ``evaluations``).
Every analytics function then runs on the very code path it runs on for a DuckDB store.

The window is widened by :data:`WINDOW_MARGIN` on both sides: requests are selected by the
start of their entry span, and a request's other spans may start a little earlier
(clock skew between services) or later (a long stream) than that.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from infermeter.collectors._clickhouse_schema import (
    CLICKHOUSE_SCHEMA_VERSION,
    EMBEDDINGS_VIEW,
    EVENTS_VIEW,
    SPANS_VIEW,
    clickhouse_schema_version,
)
from infermeter.collectors._schema import (
    EMBEDDING_COLUMNS,
    EVENT_COLUMNS,
    SPAN_COLUMNS,
    apply_migrations,
    arrow_schema,
)
from infermeter.collectors._store import _insert_events

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from clickhouse_connect.driver.client import Client
    from infermeter.collectors._store_url import StoreLocation

__all__ = ["WINDOW_MARGIN", "load_window", "open_clickhouse_reader"]

WINDOW_MARGIN: Final = timedelta(hours=1)


def _pull(
    client: Client,
    view: str,
    columns: tuple[tuple[str, str], ...],
    since: datetime | None,
    until: datetime | None,
) -> pa.Table:
    names = ", ".join(name for name, _ in columns)
    where: list[str] = []
    parameters: dict[str, datetime] = {}
    if since is not None:
        where.append("otel_timestamp >= {since:DateTime64(6, 'UTC')}")
        parameters["since"] = since - WINDOW_MARGIN
    if until is not None:
        where.append("otel_timestamp < {until:DateTime64(6, 'UTC')}")
        parameters["until"] = until + WINDOW_MARGIN
    sql = f"SELECT {names} FROM {view}"  # noqa: S608 — fixed view and contract column names
    if where:
        sql += " WHERE " + " AND ".join(where)
    table = client.query_arrow(sql, parameters=parameters, use_strings=True)
    return _conform(table, arrow_schema(columns))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` cast to the store's Arrow schema (UTC timestamps become naive UTC)."""
    import pyarrow as pa

    arrays = []
    for field in schema:
        column = table.column(field.name)
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit)).cast(field.type)
        arrays.append(column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def load_window(
    client: Client,
    con: duckdb.DuckDBPyConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[int, int]:
    """Append the window's spans and embeddings from ClickHouse to ``con``'s store tables;
    returns the (spans, embeddings) row counts."""
    spans = _pull(client, SPANS_VIEW, SPAN_COLUMNS, since, until)
    embeddings = _pull(client, EMBEDDINGS_VIEW, EMBEDDING_COLUMNS, since, until)
    for name, rows in (("spans", spans), ("embeddings", embeddings)):
        if rows.num_rows:
            view = f"_infermeter_{name}_pull"
            con.register(view, rows)
            try:
                con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {view}")  # noqa: S608
            finally:
                con.unregister(view)
    if _has_view(client, EVENTS_VIEW):
        # Every event, whatever the window: an evaluation links to its request by ids at
        # read time and may arrive long after it (one row per evaluation or feedback: few).
        events = _pull(client, EVENTS_VIEW, EVENT_COLUMNS, None, None)
        _insert_events(con, events)  # also fills evaluations, as the store writer does
    return spans.num_rows, embeddings.num_rows


def _has_view(client: Client, name: str) -> bool:
    """Whether ``name`` exists (a store initialised by an older infermeter lacks views
    added since; ``init`` adds them)."""
    rows = client.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase()"
        " AND name = {name:String}",
        parameters={"name": name},
    ).result_rows
    return bool(rows[0][0])


def open_clickhouse_reader(
    location: StoreLocation,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection holding the ClickHouse store's spans and embeddings
    (of the window ``[since, until)`` by span start when given, else all of them).

    Raises ``OSError`` when the store cannot be reached or was never initialised.
    """
    import duckdb

    client = location.client()
    try:
        version = clickhouse_schema_version(client)
        if version < CLICKHOUSE_SCHEMA_VERSION:
            raise OSError(
                f"ClickHouse store {location.display} has no infermeter views (version "
                f"{version}): run `infermeter clickhouse init --store {location.display}`"
            )
        from infermeter.collectors._reader import reader_config

        # The reader's buffer pool and spill directory, as for a DuckDB store.
        con = duckdb.connect(":memory:", config=reader_config())
        try:
            apply_migrations(con)
            load_window(client, con, since=since, until=until)
        except BaseException:
            con.close()
            raise
    finally:
        with contextlib.suppress(Exception):
            client.close()
    return con
