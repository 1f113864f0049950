"""OTLP log records → ``events`` rows (``POST /v1/logs``), and evaluation span events.

OpenTelemetry is moving events from span events to log records: an event is a
``LogRecord`` whose ``event_name`` is set (older emitters put it in the ``event.name``
attribute), parented to a span through the record's ``trace_id`` / ``span_id``. Every
record is kept whole in ``events`` (body, attributes and resource as JSON); the GenAI
evaluation event ``gen_ai.evaluation.result`` also fills the typed evaluation columns,
which the store copies into ``evaluations``. The same typed row is built for an
evaluation that arrives as a span event, so analytics read one table whichever way it
came.

Volume is low (one record per evaluation or feedback), so unlike the span path this one
parses OTLP/JSON with the reference parser (``json_format.ParseDict``).

Rules: a record whose ids have the wrong length is rejected (counted in the
``partial_success`` answer) and the rest kept; an all-zero or empty id means "not
linked" (NULL). A bearer token bound to a tenant pins ``tenant``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent import semconv as sc
from infermeter.collectors._decode import BodyError, fix_json_ids
from infermeter.collectors._flatten import Limits, plain_value, to_json
from infermeter.collectors._schema import EVENT_COLUMNS, arrow_schema

if TYPE_CHECKING:
    import pyarrow as pa
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

__all__ = [
    "LOGS_PATH",
    "FlattenedLogs",
    "decode_logs_json",
    "decode_logs_protobuf",
    "evaluation_fields",
    "event_row",
    "events_to_arrow",
    "flatten_logs",
    "logs_response",
]

LOGS_PATH: Final = "/v1/logs"
# Older emitters (the Events API before LogRecord.event_name existed) name the event here.
_EVENT_NAME_ATTRIBUTE: Final = "event.name"
_MAX_INT64: Final = (1 << 63) - 1
_ZERO_TRACE: Final = bytes(16)
_ZERO_SPAN: Final = bytes(8)
_COLUMNS: Final = {name: i for i, (name, _) in enumerate(EVENT_COLUMNS)}
_WIDTH: Final = len(EVENT_COLUMNS)
_SCHEMA: Any = None


@dataclass(slots=True)
class FlattenedLogs:
    """Rows for ``events`` and what the OTLP answer must report."""

    rows: list[list[Any]] = field(default_factory=list)
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)

    def message(self) -> str:
        parts = [f"{n} log record(s) rejected: {why}" for why, n in self.reasons.items()]
        parts += [f"{n} {what}" for what, n in self.warnings.items()]
        return "; ".join(parts)


def decode_logs_protobuf(body: bytes) -> ExportLogsServiceRequest:
    """Parse a binary ``ExportLogsServiceRequest`` or raise 400."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )

    try:
        return ExportLogsServiceRequest.FromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        detail = str(exc) or type(exc).__name__
        raise BodyError(400, f"malformed protobuf ExportLogsServiceRequest: {detail}") from None


def decode_logs_json(document: Any) -> ExportLogsServiceRequest:
    """A parsed OTLP/JSON logs document as a request message, or raise 400.

    OTLP/JSON writes trace and span ids as hex, where proto3 JSON expects base64: they
    are rewritten first (base64 of the right length is accepted too)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )

    if not isinstance(document, dict):
        raise BodyError(400, "malformed OTLP/JSON: the body must be a JSON object")
    for resource_logs in _items(document, "resourceLogs", "resource_logs"):
        for scope_logs in _items(resource_logs, "scopeLogs", "scope_logs"):
            for index, record in enumerate(_items(scope_logs, "logRecords", "log_records")):
                if isinstance(record, dict):
                    fix_json_ids(record, f"log record {index}", _ID_BYTES)
    try:
        return json_format.ParseDict(
            document, ExportLogsServiceRequest(), ignore_unknown_fields=True
        )
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BodyError(400, f"malformed OTLP/JSON ExportLogsServiceRequest: {detail}") from None


def _items(container: Any, *names: str) -> list[Any]:
    if not isinstance(container, dict):
        return []
    for name in names:
        value = container.get(name)
        if isinstance(value, list):
            return value
    return []


_ID_BYTES: Final = {"traceId": 16, "trace_id": 16, "spanId": 8, "span_id": 8}


def evaluation_fields(attributes: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any]:
    """(name, score value, score label, explanation, response id) of an evaluation event's
    attributes; a value of the wrong type is left out (it stays in the JSON)."""

    def text(key: str) -> str | None:
        value = attributes.get(key)
        return value if isinstance(value, str) and value else None

    score = attributes.get(sc.GEN_AI_EVALUATION_SCORE_VALUE)
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        score = None
    return (
        text(sc.GEN_AI_EVALUATION_NAME),
        float(score) if score is not None else None,
        text(sc.GEN_AI_EVALUATION_SCORE_LABEL),
        text(sc.GEN_AI_EVALUATION_EXPLANATION),
        text(sc.GEN_AI_RESPONSE_ID),
    )


def event_row(
    *,
    time_us: int | None,
    observed_us: int | None,
    trace_id: str | None,
    span_id: str | None,
    service_name: str | None,
    tenant: str | None,
    event_name: str | None,
    attributes: dict[str, Any],
    source: str,
    severity_number: int | None = None,
    severity_text: str | None = None,
    body: str | None = None,
    resource_json: str | None = None,
    scope_name: str | None = None,
) -> list[Any]:
    """One ``events`` row in ``EVENT_COLUMNS`` order (evaluation columns filled for
    ``gen_ai.evaluation.result``)."""
    row: list[Any] = [None] * _WIDTH
    row[_COLUMNS["time"]] = time_us
    row[_COLUMNS["observed_time"]] = observed_us
    row[_COLUMNS["trace_id"]] = trace_id
    row[_COLUMNS["span_id"]] = span_id
    row[_COLUMNS["service_name"]] = service_name
    row[_COLUMNS["tenant"]] = tenant
    row[_COLUMNS["event_name"]] = event_name
    row[_COLUMNS["severity_number"]] = severity_number
    row[_COLUMNS["severity_text"]] = severity_text
    row[_COLUMNS["body"]] = body
    row[_COLUMNS["attributes"]] = to_json(attributes)
    row[_COLUMNS["resource_attributes"]] = resource_json
    row[_COLUMNS["scope_name"]] = scope_name
    row[_COLUMNS["source"]] = source
    if event_name == sc.GEN_AI_EVALUATION_RESULT:
        name, score, label, explanation, response_id = evaluation_fields(attributes)
        row[_COLUMNS["evaluation_name"]] = name
        row[_COLUMNS["score_value"]] = score
        row[_COLUMNS["score_label"]] = label
        row[_COLUMNS["explanation"]] = explanation
        row[_COLUMNS["response_id"]] = response_id
    return row


def _hex_id(raw: bytes, size: int, zero: bytes) -> tuple[bool, str | None]:
    if not raw or raw == zero:
        return True, None
    if len(raw) != size:
        return False, None
    return True, raw.hex()


def _reject(result: FlattenedLogs, reason: str) -> None:
    result.rejected += 1
    result.reasons[reason] = result.reasons.get(reason, 0) + 1


def _resource(
    kvs: list[KeyValue], limits: Limits, warnings: dict[str, int]
) -> tuple[str | None, str | None, str]:
    attributes = {kv.key: plain_value(kv.value, limits, warnings) for kv in kvs}
    service = attributes.pop(sc.SERVICE_NAME, None)
    tenant = attributes.get(sc.TENANT_ID)
    return (
        service if isinstance(service, str) else None,
        tenant if isinstance(tenant, str) else None,
        to_json(attributes),
    )


def flatten_logs(
    request: ExportLogsServiceRequest, *, limits: Limits | None = None, tenant: str | None = None
) -> FlattenedLogs:
    """Every log record of ``request`` as an ``events`` row (see the module rules)."""
    limits = limits or Limits()
    result = FlattenedLogs()
    warnings = result.warnings
    for resource_logs in request.resource_logs:
        service, resource_tenant, resource_json = _resource(
            list(resource_logs.resource.attributes), limits, warnings
        )
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope.name or None
            for record in scope_logs.log_records:
                ok_trace, trace_id = _hex_id(record.trace_id, 16, _ZERO_TRACE)
                ok_span, span_id = _hex_id(record.span_id, 8, _ZERO_SPAN)
                if not (ok_trace and ok_span):
                    _reject(result, "trace_id must be 16 bytes and span_id 8 bytes")
                    continue
                attributes = {
                    kv.key: plain_value(kv.value, limits, warnings) for kv in record.attributes
                }
                name = record.event_name or None
                legacy = attributes.get(_EVENT_NAME_ATTRIBUTE)
                if name is None and isinstance(legacy, str) and legacy:
                    name = legacy
                claimed = attributes.get(sc.TENANT_ID)
                record_tenant = claimed if isinstance(claimed, str) else resource_tenant
                if tenant is not None:
                    if record_tenant is not None and record_tenant != tenant:
                        attributes[sc.INFERMETER_CLAIMED_TENANT] = record_tenant
                    record_tenant = tenant
                time_ns = min(record.time_unix_nano, _MAX_INT64)
                observed_ns = min(record.observed_time_unix_nano, _MAX_INT64)
                body = (
                    to_json(plain_value(record.body, limits, warnings))
                    if record.HasField("body")
                    else None
                )
                result.rows.append(
                    event_row(
                        time_us=(time_ns or observed_ns) // 1000 or None,
                        observed_us=observed_ns // 1000 or None,
                        trace_id=trace_id,
                        span_id=span_id,
                        service_name=service,
                        tenant=record_tenant,
                        event_name=name,
                        attributes=attributes,
                        source="log",
                        severity_number=record.severity_number or None,
                        severity_text=record.severity_text or None,
                        body=body,
                        resource_json=resource_json,
                        scope_name=scope,
                    )
                )
    return result


def events_to_arrow(rows: list[list[Any]]) -> pa.Table:
    """``events`` rows as an Arrow table in the store's column order."""
    import pyarrow as pa

    global _SCHEMA  # noqa: PLW0603 — built once, on first use
    if _SCHEMA is None:
        _SCHEMA = arrow_schema(EVENT_COLUMNS)
    if not rows:
        return _SCHEMA.empty_table()
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(column, type=f.type) for column, f in zip(columns, _SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=_SCHEMA)


def logs_response(kind_is_json: bool, rejected: int, message: str) -> bytes:
    """An ``ExportLogsServiceResponse`` in the request's encoding."""
    import json

    if kind_is_json:
        if not rejected and not message:
            return b"{}"
        partial = {"rejectedLogRecords": str(rejected), "errorMessage": message}
        return json.dumps({"partialSuccess": partial}).encode()
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceResponse,
    )

    response = ExportLogsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_log_records = rejected
        response.partial_success.error_message = message
    return response.SerializeToString()
