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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

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
    from collections.abc import Callable

    import duckdb
    import pyarrow as pa
    from clickhouse_connect.driver.client import Client
    from infermeter.collectors._store_url import StoreLocation

__all__ = [
    "WINDOW_MARGIN",
    "RequestRead",
    "RequestRows",
    "load_window",
    "open_clickhouse_reader",
    "open_clickhouse_request_rows",
]

WINDOW_MARGIN: Final = timedelta(hours=1)


def _pull(
    client: Client,
    view: str,
    columns: tuple[tuple[str, str], ...],
    since: datetime | None,
    until: datetime | None,
    *,
    traces: list[str] | None = None,
) -> pa.Table:
    names = ", ".join(name for name, _ in columns)
    where: list[str] = []
    parameters: dict[str, Any] = {}
    if traces is not None:
        where.append("trace_id IN {traces:Array(String)}")
        parameters["traces"] = traces
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


def _checked_client(location: StoreLocation) -> Client:
    client = location.client()
    version = clickhouse_schema_version(client)
    if version < CLICKHOUSE_SCHEMA_VERSION:
        client.close()
        raise OSError(
            f"ClickHouse store {location.display} has no infermeter views (version "
            f"{version}): run `infermeter clickhouse init --store {location.display}`"
        )
    return client


# Trace ids per query when pulling the spans of chosen traces (a parameter each).
_TRACES_PER_PULL: Final = 20_000


@dataclass(frozen=True)
class RequestRead:
    """What one request-rows read took from ClickHouse: the window, the request facts
    merged inside ClickHouse, and the spans pulled for the traces it cannot answer."""

    since: datetime | None
    until: datetime | None
    fact_rows: int
    traces: int
    spans: int


class RequestRows:
    """A ClickHouse store read as request rows (step 2).

    :meth:`read` gives a window's request facts (stage (a) columns) merged inside
    ClickHouse and the spans of the traces its rollup cannot answer exactly
    (``collectors._clickhouse_requests``), to compute theirs from.
    ``connection``: an in-memory DuckDB with the store tables, whose ``spans`` hold only
    the spans of those traces, for every window read so far (nothing is read before the
    first :meth:`read`). :meth:`newest_span`: the newest span start up to a limit and the
    count of spans after it. ``reads``: every read so far. Close it when
    done (the connection and the ClickHouse client).
    """

    def __init__(self, location: StoreLocation, *, memory_limit: str | None = None) -> None:
        import duckdb

        self.location = location
        self.reads: list[RequestRead] = []
        self._client = _checked_client(location)
        try:
            from infermeter.collectors._reader import reader_config

            # The reader's buffer pool and spill directory, as for a DuckDB store.
            self.connection = duckdb.connect(":memory:", config=reader_config(memory_limit))
            apply_migrations(self.connection)
            if _has_view(self._client, EVENTS_VIEW):
                # Every event (evaluations, feedback), as the span reader loads them.
                events = _pull(self._client, EVENTS_VIEW, EVENT_COLUMNS, None, None)
                _insert_events(self.connection, events)
        except BaseException:
            self._client.close()
            raise

    def read(
        self,
        since: datetime | None,
        until: datetime | None,
        sink: Callable[[pa.Table], None] | None = None,
    ) -> tuple[pa.Table, pa.Table]:
        """``(facts, spans)`` of the requests whose entry span starts in ``[since, until)``
        (naive UTC; unbounded when None): the request facts ClickHouse merged, and the
        spans (store columns) of every other request's trace. With ``sink``, the facts go
        to it a bucket range at a time instead (``facts`` comes back empty)."""
        from infermeter.collectors._clickhouse_requests import pull_request_facts

        counted = 0

        def counting(part: pa.Table) -> None:
            nonlocal counted
            counted += part.num_rows
            assert sink is not None
            sink(part)

        facts, traces = pull_request_facts(
            self._client, since=since, until=until, sink=None if sink is None else counting
        )
        ids = [str(t) for t in traces.column("trace_id").to_pylist()]
        parts = [
            _pull(
                self._client,
                SPANS_VIEW,
                SPAN_COLUMNS,
                since,
                until,
                traces=ids[start : start + _TRACES_PER_PULL],
            )
            for start in range(0, len(ids), _TRACES_PER_PULL)
        ]
        spans = _concat(parts)
        self._keep(spans)
        fact_rows = facts.num_rows if sink is None else counted
        self.reads.append(RequestRead(since, until, fact_rows, len(ids), spans.num_rows))
        # Not cached: the analytics hold the priced requests of each window they read.
        return facts, spans

    def _keep(self, spans: pa.Table) -> None:
        """Add the spans of traces not held yet to ``connection``'s ``spans`` (what the
        span-reading analytics of the windows read so far see)."""
        if not spans.num_rows:
            return
        self.connection.register("_infermeter_spans_pull", spans)
        try:
            self.connection.execute(
                "INSERT INTO spans BY NAME SELECT * FROM _infermeter_spans_pull AS p"
                " WHERE p.trace_id NOT IN (SELECT DISTINCT trace_id FROM spans)"
            )
        finally:
            self.connection.unregister("_infermeter_spans_pull")

    def newest_span(self, limit: datetime | None) -> tuple[datetime | None, int]:
        """The newest span start up to ``limit`` (naive UTC) and the count after it: the
        store's NEWEST_SPAN answer, read from ClickHouse (``spans`` here hold a subset)."""
        return _newest(self._client, limit)

    def close(self) -> None:
        try:
            self.connection.close()
        finally:
            with contextlib.suppress(Exception):
                self._client.close()


def _concat(parts: list[pa.Table]) -> pa.Table:
    import pyarrow as pa

    if parts:
        return pa.concat_tables(parts)
    return arrow_schema(SPAN_COLUMNS).empty_table()


def open_clickhouse_request_rows(
    location: StoreLocation, *, memory_limit: str | None = None
) -> RequestRows:
    """The ClickHouse store at ``location`` read as request rows (:class:`RequestRows`),
    held in a DuckDB buffer pool of ``memory_limit`` (default: the reader's).
    Raises ``OSError`` when the store cannot be reached or was never initialised."""
    return RequestRows(location, memory_limit=memory_limit)


def _newest(client: Client, limit: datetime | None) -> tuple[datetime | None, int]:
    """The newest span start up to ``limit`` and the count after it (NEWEST_SPAN's answer)."""
    if limit is None:
        sql = f"SELECT maxOrNull(start_time), 0 FROM {SPANS_VIEW}"  # noqa: S608 — fixed name
        rows = client.query(sql).result_rows
    else:
        limited = "{limit:DateTime64(6, 'UTC')}"  # a parameter; the view's name is fixed
        sql = f"SELECT maxIfOrNull(start_time, start_time <= {limited}), countIf(start_time > {limited}) FROM {SPANS_VIEW}"  # noqa: S608, E501
        rows = client.query(sql, parameters={"limit": limit}).result_rows
    newest, after = rows[0][0], int(rows[0][1])
    if isinstance(newest, datetime) and newest.tzinfo is not None:
        newest = newest.astimezone(UTC).replace(tzinfo=None)
    return newest, after


def open_clickhouse_reader(
    location: StoreLocation,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection holding the ClickHouse store's spans and embeddings
    (of the window ``[since, until)`` by span start when given, else all of them).

    Raises ``OSError`` when the store cannot be reached or was never initialised.
    """
    import duckdb

    client = _checked_client(location)
    try:
        from infermeter.collectors._reader import reader_config

        # The reader's buffer pool and spill directory, as for a DuckDB store.
        con = duckdb.connect(":memory:", config=reader_config(memory_limit))
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
