"""OTLP spans -> ``otel_traces`` rows exactly as the collector's ``clickhouseexporter`` writes them.

Follows ``exporter_traces.go`` / ``exporter_traces_json.go`` (pushTraceData) of
opentelemetry-collector-contrib: ``Timestamp`` is the span start in nanoseconds,
``Duration`` end minus start in nanoseconds, ids lowercase hex ('' for an empty parent),
``SpanKind`` / ``StatusCode`` the pdata names (``Server``, ``Ok``…), ``ServiceName`` the
resource ``service.name``; attributes go through pcommon ``Value.AsString`` into a
``Map(String, String)`` (numbers as Go/ES6 number text, arrays and maps as JSON) or, with
``json: true``, through ``json.Marshal(AsRaw())`` into a JSON column.

Used to load OTLP files or requests into ClickHouse in the exporter's own format (the
parity tests write the same spans to both engines through it).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pyarrow as pa
    from clickhouse_connect.driver.client import Client
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "OTEL_LOGS_COLUMNS",
    "OTEL_TRACES_COLUMNS",
    "go_json",
    "go_number",
    "insert_otel_logs",
    "insert_otel_traces",
    "otel_logs_arrow",
    "otel_traces_arrow",
]

# The exporter's ``otel_traces`` columns, in the order its DDL declares them.
OTEL_TRACES_COLUMNS: Final = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)

# The exporter's ``otel_logs`` insert columns (exporter_logs.go / logs_insert.sql), in its
# order; newer exporters add ``EventName`` (LogRecord.event_name) at the end.
OTEL_LOGS_COLUMNS: Final = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "TraceFlags",
    "SeverityText",
    "SeverityNumber",
    "ServiceName",
    "Body",
    "ResourceSchemaUrl",
    "ResourceAttributes",
    "ScopeSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "LogAttributes",
)

_KINDS: Final = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
_STATUSES: Final = ("Unset", "Ok", "Error")
_EXPONENT: Final = re.compile(r"e([+-])0*(\d)")


def go_number(value: float) -> str:
    """A float64 as Go's encoding/json (and pcommon AsString) writes it (ES6 style)."""
    if not math.isfinite(value):
        return "json: unsupported value: " + ("NaN" if math.isnan(value) else f"{value:+}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(value)
        if "e" not in text:
            text = f"{value:e}"
        mantissa, _, exponent = text.partition("e")
        if mantissa.endswith(".0"):
            mantissa = mantissa[:-2]
        return _EXPONENT.sub(r"e\1\2", f"{mantissa}e{exponent}")
    from decimal import Decimal

    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def go_json(raw: Any) -> str:  # noqa: PLR0911 — one exit per JSON value kind
    """Go's json.Marshal of pcommon AsRaw() output (sorted keys, HTML-escaped strings)."""
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return go_number(raw)
    if isinstance(raw, bytes):
        return json.dumps(base64.b64encode(raw).decode("ascii"))
    if isinstance(raw, str):
        text = json.dumps(raw, ensure_ascii=False)
        for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(char, escape)
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(raw, dict):
        items = (f"{go_json(k)}:{go_json(raw[k])}" for k in sorted(raw))
        return "{" + ",".join(items) + "}"
    return "[" + ",".join(go_json(item) for item in raw) + "]"


def _raw(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_raw(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _raw(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def _as_string(value: AnyValue) -> str:  # noqa: PLR0911 — one exit per value kind
    """pcommon ``Value.AsString``."""
    which = value.WhichOneof("value")
    if which is None:
        return ""
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        return go_number(value.double_value)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return go_json(_raw(value))


def _attributes(kvs: Iterable[KeyValue], json_column: bool) -> Any:
    if json_column:
        return go_json({kv.key: _raw(kv.value) for kv in kvs})
    return [(kv.key, _as_string(kv.value)) for kv in kvs]


def otel_traces_arrow(
    requests: Iterable[ExportTraceServiceRequest],
    *,
    json_column: bool = False,
    scope_column: bool = True,
) -> pa.Table:
    """The ``otel_traces`` rows of every span in ``requests`` (insert column order)."""
    import pyarrow as pa

    cols: dict[str, list[Any]] = {name: [] for name in OTEL_TRACES_COLUMNS}
    for request in requests:
        for resource_spans in request.resource_spans:
            resource = resource_spans.resource.attributes
            service = next(
                (_as_string(kv.value) for kv in resource if kv.key == "service.name"), ""
            )
            resource_attributes = _attributes(resource, json_column)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope
                for span in scope_spans.spans:
                    parent = span.parent_span_id
                    cols["Timestamp"].append(span.start_time_unix_nano)
                    cols["TraceId"].append(span.trace_id.hex() if any(span.trace_id) else "")
                    cols["SpanId"].append(span.span_id.hex() if any(span.span_id) else "")
                    cols["ParentSpanId"].append(parent.hex() if any(parent) else "")
                    cols["TraceState"].append(span.trace_state)
                    cols["SpanName"].append(span.name)
                    kind = int(span.kind)
                    cols["SpanKind"].append(_KINDS[kind] if kind < len(_KINDS) else str(kind))
                    cols["ServiceName"].append(service)
                    cols["ResourceAttributes"].append(resource_attributes)
                    cols["ScopeName"].append(scope.name)
                    cols["ScopeVersion"].append(scope.version)
                    attributes = _attributes(span.attributes, json_column)
                    if not scope_column and not json_column:
                        # Older exporter tables: the scope travels as span attributes.
                        attributes += [
                            (key, value)
                            for key, value in (
                                ("otel.scope.name", scope.name),
                                ("otel.scope.version", scope.version),
                            )
                            if value
                        ]
                    cols["SpanAttributes"].append(attributes)
                    cols["Duration"].append(
                        (span.end_time_unix_nano - span.start_time_unix_nano) % (1 << 64)
                    )
                    code = int(span.status.code)
                    cols["StatusCode"].append(
                        _STATUSES[code] if code < len(_STATUSES) else str(code)
                    )
                    cols["StatusMessage"].append(span.status.message)
                    cols["Events.Timestamp"].append([e.time_unix_nano for e in span.events])
                    cols["Events.Name"].append([e.name for e in span.events])
                    cols["Events.Attributes"].append(
                        [_attributes(e.attributes, json_column) for e in span.events]
                    )
                    cols["Links.TraceId"].append([link.trace_id.hex() for link in span.links])
                    cols["Links.SpanId"].append([link.span_id.hex() for link in span.links])
                    cols["Links.TraceState"].append([link.trace_state for link in span.links])
                    cols["Links.Attributes"].append(
                        [_attributes(link.attributes, json_column) for link in span.links]
                    )
    attrs: pa.DataType = pa.string() if json_column else pa.map_(pa.string(), pa.string())
    ts = pa.timestamp("ns", tz="UTC")
    types: dict[str, pa.DataType] = {
        "Timestamp": ts,
        "ResourceAttributes": attrs,
        "SpanAttributes": attrs,
        "Duration": pa.uint64(),
        "Events.Timestamp": pa.list_(ts),
        "Events.Name": pa.list_(pa.string()),
        "Events.Attributes": pa.list_(attrs),
        "Links.TraceId": pa.list_(pa.string()),
        "Links.SpanId": pa.list_(pa.string()),
        "Links.TraceState": pa.list_(pa.string()),
        "Links.Attributes": pa.list_(attrs),
    }
    if not scope_column:
        del cols["ScopeName"], cols["ScopeVersion"]
    return pa.table(
        {name: pa.array(values, type=types.get(name, pa.string())) for name, values in cols.items()}
    )


def insert_otel_traces(client: Client, table: pa.Table, *, name: str = "otel_traces") -> None:
    """Insert ``table`` (from :func:`otel_traces_arrow`) as one block."""
    if table.num_rows == 0:
        return
    client.insert_arrow(name, table)


def otel_logs_arrow(
    requests: Iterable[ExportLogsServiceRequest],
    *,
    json_column: bool = False,
    event_name_column: bool = False,
) -> pa.Table:
    """The ``otel_logs`` rows of every log record in ``requests`` as the exporter writes
    them (``pushLogsData``): the record's time, else its observed time; ids as hex ('' when
    unset); the body through ``AsString``; ``ServiceName`` the resource's ``service.name``
    string (the exporter keeps the previous resource's name when one has none)."""
    import pyarrow as pa

    columns = OTEL_LOGS_COLUMNS + (("EventName",) if event_name_column else ())
    cols: dict[str, list[Any]] = {name: [] for name in columns}
    service = ""
    for request in requests:
        for resource_logs in request.resource_logs:
            resource = resource_logs.resource.attributes
            for kv in resource:
                if kv.key == "service.name":
                    service = kv.value.string_value
            resource_attributes = _attributes(resource, json_column)
            for scope_logs in resource_logs.scope_logs:
                scope = scope_logs.scope
                scope_attributes = _attributes(scope.attributes, json_column)
                for record in scope_logs.log_records:
                    cols["Timestamp"].append(
                        record.time_unix_nano or record.observed_time_unix_nano
                    )
                    cols["TraceId"].append(record.trace_id.hex() if any(record.trace_id) else "")
                    cols["SpanId"].append(record.span_id.hex() if any(record.span_id) else "")
                    cols["TraceFlags"].append(record.flags & 0xFF)
                    cols["SeverityText"].append(record.severity_text)
                    cols["SeverityNumber"].append(int(record.severity_number))
                    cols["ServiceName"].append(service)
                    cols["Body"].append(_as_string(record.body))
                    cols["ResourceSchemaUrl"].append(resource_logs.schema_url)
                    cols["ResourceAttributes"].append(resource_attributes)
                    cols["ScopeSchemaUrl"].append(scope_logs.schema_url)
                    cols["ScopeName"].append(scope.name)
                    cols["ScopeVersion"].append(scope.version)
                    cols["ScopeAttributes"].append(scope_attributes)
                    cols["LogAttributes"].append(_attributes(record.attributes, json_column))
                    if event_name_column:
                        cols["EventName"].append(record.event_name)
    attrs: pa.DataType = pa.string() if json_column else pa.map_(pa.string(), pa.string())
    types: dict[str, pa.DataType] = {
        "Timestamp": pa.timestamp("ns", tz="UTC"),
        "TraceFlags": pa.uint8(),
        "SeverityNumber": pa.uint8(),
        "ResourceAttributes": attrs,
        "ScopeAttributes": attrs,
        "LogAttributes": attrs,
    }
    return pa.table(
        {name: pa.array(values, type=types.get(name, pa.string())) for name, values in cols.items()}
    )


def insert_otel_logs(client: Client, table: pa.Table, *, name: str = "otel_logs") -> None:
    """Insert ``table`` (from :func:`otel_logs_arrow`) as one block."""
    if table.num_rows == 0:
        return
    client.insert_arrow(name, table)
