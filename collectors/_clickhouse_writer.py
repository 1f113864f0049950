"""infermeter's collector writing to a ClickHouse store (``collect --store clickhouse://…``).

The receiver, write-ahead log, backpressure and tenant tokens are unchanged: the ingest
pipeline hands this writer the same Arrow batches of store rows it hands the DuckDB
store, and this writer turns them back into ``otel_traces`` rows as the OpenTelemetry
Collector's clickhouseexporter writes them (typed columns back to their attributes with
the collector's own mapping, values as pcommon ``AsString`` text, embeddings back to
``infermeter.embedding`` span events), inserted as one Arrow block per batch; OTLP log
records (evaluations, feedback) go to ``otel_logs`` the same way. So a team
can keep infermeter's ingest and scale the storage, and every reader sees one table
whichever collector wrote a row.

The write-ahead-log checkpoint lives in ``infermeter_ingest_checkpoint`` and is written
after the rows: ClickHouse has no transaction spanning both, so a crash between the two
inserts replays that one batch (at-least-once for that window; DuckDB stores are
exactly-once).
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from infermeter.collectors._clickhouse_otel import (
    OTEL_LOGS_COLUMNS,
    OTEL_TRACES_COLUMNS,
    go_json,
    go_number,
    insert_otel_logs,
    insert_otel_traces,
)
from infermeter.collectors._clickhouse_schema import (
    DEFAULT_TABLE,
    LOGS_TABLE,
    LogsShape,
    TableShape,
    attribute_columns,
    clickhouse_init,
    clickhouse_view_settings,
    detect_logs_shape,
    detect_shape,
)
from infermeter.collectors._conventions import DEFAULT_TENANT_ATTRIBUTES

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa
    from infermeter.collectors._store import SnapshotInfo
    from infermeter.collectors._store_url import StoreLocation

__all__ = ["ClickHouseWriter"]

_log = logging.getLogger("infermeter.collectors")
CHECKPOINT_TABLE: Final = "infermeter_ingest_checkpoint"
_KINDS: Final = {
    "UNSPECIFIED": "Unspecified",
    "INTERNAL": "Internal",
    "SERVER": "Server",
    "CLIENT": "Client",
    "PRODUCER": "Producer",
    "CONSUMER": "Consumer",
}
_STATUSES: Final = {"UNSET": "Unset", "OK": "Ok", "ERROR": "Error"}
_EMBEDDING_EVENT: Final = "infermeter.embedding"


def _text(value: Any) -> str:
    """A plain (JSON-decoded or typed) value as pcommon ``AsString`` writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_number(value)
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return go_json(value)


class _Reverse:
    """Store column -> (attribute, container, value back to the attribute's unit)."""

    def __init__(self) -> None:
        self.span: list[tuple[str, str, float | None, int]] = []
        self.resource: list[tuple[str, str]] = []
        seen: set[str] = set()
        for spec in attribute_columns():
            if spec.column in seen or spec.source == "secondary":
                continue
            seen.add(spec.column)
            if spec.source == "resource":
                self.resource.append((spec.column, spec.attribute))
            else:
                self.span.append((spec.column, spec.attribute, spec.scale, spec.offset))

    def span_attributes(self, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for column, attribute, scale, offset in self.span:
            value = row.get(column)
            if value is None:
                continue
            if scale is not None and scale != 1.0:
                value = value / scale
            elif offset:
                value = value - offset
            out[attribute] = value
        if row.get("attributes"):
            out.update(json.loads(row["attributes"]))
        return out

    def resource_attributes(self, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for column, attribute in self.resource:
            if row.get(column) is not None:
                out[attribute] = row[column]
        if row.get("resource_attributes"):
            out.update(json.loads(row["resource_attributes"]))
        return out


def _attributes(values: dict[str, Any], shape: TableShape) -> Any:
    if shape.json:
        return go_json(values)
    return [(key, _text(value)) for key, value in values.items()]


def _ns(moment: datetime | None) -> int:
    if moment is None:
        return 0
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return int(aware.timestamp()) * 1_000_000_000 + aware.microsecond * 1000


class ClickHouseWriter:
    """The ingest pipeline's store on ClickHouse (the ``StoreWriter`` methods it uses)."""

    def __init__(self, location: StoreLocation, *, table: str = DEFAULT_TABLE) -> None:
        self.location = location
        self.table = table
        self._client = location.client()
        self.logs_table = LOGS_TABLE
        try:
            shape = detect_shape(self._client, table)
            logs = detect_logs_shape(self._client, self.logs_table)
            if shape is None or logs is None:
                # The exporter's tables and infermeter's views (with the tenant attributes
                # the last init recorded).
                settings = clickhouse_view_settings(self._client)
                clickhouse_init(
                    self._client,
                    table=table,
                    tenant_attributes=tuple(
                        settings.get("tenant_attributes", DEFAULT_TENANT_ATTRIBUTES)
                    ),
                )
                shape = detect_shape(self._client, table) or TableShape()
                logs = detect_logs_shape(self._client, self.logs_table) or LogsShape()
            self.shape = shape
            self.logs = logs
            self._client.command(
                f"CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (wal_id String, seq UInt64,"
                " updated_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree(seq)"
                " ORDER BY wal_id"
            )
        except BaseException:
            self._client.close()
            raise
        self._reverse = _Reverse()

    def checkpoint(self, wal_id: str) -> int:
        """The highest write-ahead-log sequence number stored for log ``wal_id``."""
        rows = self._client.query(
            f"SELECT max(seq) FROM {CHECKPOINT_TABLE} WHERE wal_id = {{wal_id:String}}",  # noqa: S608
            parameters={"wal_id": wal_id},
        ).result_rows
        return int(rows[0][0] or 0) if rows else 0

    def write(
        self,
        spans: pa.Table,
        embeddings: pa.Table,
        events: pa.Table | None = None,
        *,
        wal_id: str | None = None,
        seq: int | None = None,
    ) -> None:
        """Insert the batch as ``otel_traces`` rows (one block), its log records as
        ``otel_logs`` rows (one block), then the checkpoint.

        Evaluation results that came as span events are already in their span's
        ``Events`` (the ``infermeter_events`` view reads them there), so only the rows of
        OTLP log records go to ``otel_logs``.
        """
        if events is not None and events.num_rows:
            logs = self.log_rows(events)
            if logs.num_rows:
                insert_otel_logs(self._client, logs, name=self.logs_table)
        if spans.num_rows:
            insert_otel_traces(self._client, self.rows(spans, embeddings), name=self.table)
        elif embeddings.num_rows:
            _log.warning("%d embedding(s) without their span dropped", embeddings.num_rows)
        if wal_id is not None and seq is not None:
            self._client.insert(
                CHECKPOINT_TABLE,
                [[wal_id, seq, datetime.now(UTC)]],
                column_names=["wal_id", "seq", "updated_at"],
            )

    def rows(self, spans: pa.Table, embeddings: pa.Table) -> pa.Table:
        """Store rows back to ``otel_traces`` rows (see the module docstring)."""
        import pyarrow as pa

        vectors: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for emb in embeddings.to_pylist():
            vectors.setdefault((emb["trace_id"], emb["span_id"]), []).append(emb)
        shape = self.shape
        cols: dict[str, list[Any]] = {name: [] for name in OTEL_TRACES_COLUMNS}
        for row in spans.to_pylist():
            start = _ns(row["start_time"])
            events: list[tuple[int, str, Any]] = []
            for event in json.loads(row["events"]) if row.get("events") else []:
                events.append(
                    (
                        int(event.get("time_unix_nano") or 0),
                        str(event.get("name", "")),
                        _attributes(event.get("attributes") or {}, shape),
                    )
                )
            for emb in vectors.get((row["trace_id"], row["span_id"]), []):
                attrs: dict[str, Any] = {"infermeter.embedding.vector": emb["vector"]}
                if emb["kind"] is not None:
                    attrs = {"infermeter.embedding.kind": emb["kind"], **attrs}
                events.append((_ns(emb["time"]), _EMBEDDING_EVENT, _attributes(attrs, shape)))
            links = json.loads(row["links"]) if row.get("links") else []
            span_attrs = self._reverse.span_attributes(row)
            if not shape.scope_column and not shape.json and row.get("scope_name"):
                span_attrs["otel.scope.name"] = row["scope_name"]
            cols["Timestamp"].append(start)
            cols["TraceId"].append(row["trace_id"])
            cols["SpanId"].append(row["span_id"])
            cols["ParentSpanId"].append(row["parent_span_id"] or "")
            cols["TraceState"].append("")
            cols["SpanName"].append(row["name"] or "")
            cols["SpanKind"].append(_KINDS.get(row["kind"] or "", row["kind"] or ""))
            cols["ServiceName"].append(row["service_name"] or "")
            cols["ResourceAttributes"].append(
                _attributes(self._reverse.resource_attributes(row), shape)
            )
            cols["ScopeName"].append(row.get("scope_name") or "")
            cols["ScopeVersion"].append(row.get("scope_version") or "")
            cols["SpanAttributes"].append(_attributes(span_attrs, shape))
            cols["Duration"].append(round((row["duration_ms"] or 0.0) * 1e6))
            cols["StatusCode"].append(
                _STATUSES.get(row["status_code"] or "", row["status_code"] or "")
            )
            cols["StatusMessage"].append(row["status_message"] or "")
            cols["Events.Timestamp"].append([t for t, _, _ in events])
            cols["Events.Name"].append([n for _, n, _ in events])
            cols["Events.Attributes"].append([a for _, _, a in events])
            cols["Links.TraceId"].append([str(link.get("trace_id", "")) for link in links])
            cols["Links.SpanId"].append([str(link.get("span_id", "")) for link in links])
            cols["Links.TraceState"].append(["" for _ in links])
            cols["Links.Attributes"].append(
                [_attributes(link.get("attributes") or {}, shape) for link in links]
            )
        attrs_type: pa.DataType = pa.string() if shape.json else pa.map_(pa.string(), pa.string())
        ts = pa.timestamp("ns", tz="UTC")
        types: dict[str, pa.DataType] = {
            "Timestamp": ts,
            "ResourceAttributes": attrs_type,
            "SpanAttributes": attrs_type,
            "Duration": pa.uint64(),
            "Events.Timestamp": pa.list_(ts),
            "Events.Name": pa.list_(pa.string()),
            "Events.Attributes": pa.list_(attrs_type),
            "Links.TraceId": pa.list_(pa.string()),
            "Links.SpanId": pa.list_(pa.string()),
            "Links.TraceState": pa.list_(pa.string()),
            "Links.Attributes": pa.list_(attrs_type),
        }
        if not shape.scope_column:
            del cols["ScopeName"], cols["ScopeVersion"]
        return pa.table(
            {
                name: pa.array(values, type=types.get(name, pa.string()))
                for name, values in cols.items()
            }
        )

    def log_rows(self, events: pa.Table) -> pa.Table:
        """``events`` rows of OTLP log records back to ``otel_logs`` rows as the exporter
        writes them. The tenant the store row carries (pinned by an ingest token, else the
        record's or its resource's ``tenant.id``) is kept as the record's ``tenant.id`` when
        the attributes would read otherwise; the event name goes to ``EventName``, or to
        the ``event.name`` attribute on a table without that column."""
        import pyarrow as pa

        logs = self.logs
        columns = OTEL_LOGS_COLUMNS + (("EventName",) if logs.event_name else ())
        cols: dict[str, list[Any]] = {name: [] for name in columns}
        shape = TableShape(json=logs.json)
        for row in events.to_pylist():
            if row["source"] != "log":
                continue
            attributes = json.loads(row["attributes"]) if row.get("attributes") else {}
            resource = (
                json.loads(row["resource_attributes"]) if row.get("resource_attributes") else {}
            )
            service = row.get("service_name")
            if service is not None:
                resource = {"service.name": service, **resource}
            claimed = attributes.get("tenant.id")
            read = claimed if isinstance(claimed, str) else resource.get("tenant.id")
            tenant = row.get("tenant")
            if tenant is not None and read != tenant:
                attributes["tenant.id"] = tenant
            name = row.get("event_name")
            if name and not logs.event_name and attributes.get("event.name") != name:
                attributes["event.name"] = name
            body = json.loads(row["body"]) if row.get("body") is not None else None
            cols["Timestamp"].append(_ns(row["time"]))
            cols["TraceId"].append(row.get("trace_id") or "")
            cols["SpanId"].append(row.get("span_id") or "")
            cols["TraceFlags"].append(0)
            cols["SeverityText"].append(row.get("severity_text") or "")
            cols["SeverityNumber"].append(row.get("severity_number") or 0)
            cols["ServiceName"].append(service or "")
            cols["Body"].append(_text(body))
            cols["ResourceSchemaUrl"].append("")
            cols["ResourceAttributes"].append(_attributes(resource, shape))
            cols["ScopeSchemaUrl"].append("")
            cols["ScopeName"].append(row.get("scope_name") or "")
            cols["ScopeVersion"].append("")
            cols["ScopeAttributes"].append(_attributes({}, shape))
            cols["LogAttributes"].append(_attributes(attributes, shape))
            if logs.event_name:
                cols["EventName"].append(name or "")
        attrs_type: pa.DataType = pa.string() if logs.json else pa.map_(pa.string(), pa.string())
        types: dict[str, pa.DataType] = {
            "Timestamp": pa.timestamp("ns", tz="UTC"),
            "TraceFlags": pa.uint8(),
            "SeverityNumber": pa.uint8(),
            "ResourceAttributes": attrs_type,
            "ScopeAttributes": attrs_type,
            "LogAttributes": attrs_type,
        }
        return pa.table(
            {
                name: pa.array(values, type=types.get(name, pa.string()))
                for name, values in cols.items()
            }
        )

    def snapshot(
        self, dest: Path, wal_id: str | None = None, base: SnapshotInfo | None = None
    ) -> SnapshotInfo:
        """Readers of a ClickHouse store query it directly: there is no snapshot file."""
        raise OSError(
            f"{self.location.display} is a ClickHouse store: read it with --store "
            f"{self.location.display}, not through the collector"
        )

    def missing(self) -> str | None:
        """A server-side store cannot be removed from under the collector like a file."""
        return None

    def set_checkpoint(self, wal_id: str, seq: int) -> None:
        """Record ``seq`` for log ``wal_id``. The checkpoint here is the *highest* seq
        recorded, so it only grows; the pipeline never needs it lower on ClickHouse (the
        log's numbering is moved past it when the store opens)."""
        self._client.insert(
            CHECKPOINT_TABLE,
            [[wal_id, seq, datetime.now(UTC)]],
            column_names=["wal_id", "seq", "updated_at"],
        )

    def abandon(self) -> None:
        """Drop a client that failed (a new writer is opened to retry)."""
        with contextlib.suppress(Exception):
            self._client.close()

    def close(self) -> bool:
        """Release the client (and chdb's engine handle)."""
        self._client.close()
        return True
