"""OTLP/HTTP request bodies → ``ExportTraceServiceRequest`` (protobuf and JSON).

Everything a client controls is bounded and every failure is a :class:`BodyError`
carrying the HTTP status the receiver answers with and a one-line message, so the
receiver never turns bad input into a crash:

- ``Content-Encoding``: ``gzip``, ``deflate`` (zlib, or raw deflate as some clients send)
  and ``identity``; the decompressed size is capped while inflating (gzip bombs stop at
  the cap, they are never inflated in full) → 413.
- ``Content-Type``: ``application/x-protobuf`` or ``application/json`` → else 415.
- Protobuf goes through ``ExportTraceServiceRequest.FromString`` (the C/upb parser).
- OTLP/JSON differs from the proto3 JSON mapping in one place: trace and span ids are
  hex, not base64 (either case; base64 ids of the right length are accepted too, as
  some proto3-JSON senders emit them). 64-bit integers may be strings or numbers and
  enums may be integers or names; unknown fields are ignored (the OTLP spec requires it).
  Canonical JSON takes a fast reader (``_otlp_json``); anything else the reference
  parser (``json_format.ParseDict``), which also words the 400s.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

if TYPE_CHECKING:
    from infermeter.collectors._otlp_json import JsonRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    # Either message form the flattener reads (protobuf, or the fast JSON reader's).
    TraceRequest: TypeAlias = ExportTraceServiceRequest | JsonRequest

__all__ = [
    "JSON",
    "PROTOBUF",
    "BodyError",
    "BodyLimits",
    "count_metrics_json",
    "count_metrics_protobuf",
    "decode_json",
    "decode_protobuf",
    "decode_request",
    "decompress",
    "fix_json_ids",
    "json_for_flattening",
    "media_type",
    "parse_json",
]

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"


class BodyError(ValueError):
    """A request body the receiver must refuse; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Byte caps on one request (before and after decompression)."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 32 * 1024 * 1024


def media_type(content_type: str | None) -> str:
    """The bare media type of a ``Content-Type`` header (parameters dropped), or raise 415."""
    bare = (content_type or "").split(";", 1)[0].strip().lower()
    if bare in {PROTOBUF, "application/protobuf", "application/vnd.google.protobuf"}:
        return PROTOBUF
    if bare == JSON:
        return JSON
    shown = bare or "none"
    raise BodyError(415, f"unsupported Content-Type {shown!r}: send {PROTOBUF} or {JSON}")


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Inflate ``body`` per ``Content-Encoding``, never producing more than ``limit`` bytes."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in {"", "identity"}:
        if len(body) > limit:
            raise BodyError(413, f"body of {len(body)} bytes exceeds the {limit}-byte limit")
        return body
    if encoding in {"gzip", "x-gzip"}:
        return _inflate(body, zlib.MAX_WBITS | 16, limit, "gzip")
    if encoding == "deflate":
        # RFC 9110 deflate is zlib-wrapped; a few clients send raw deflate streams.
        try:
            return _inflate(body, zlib.MAX_WBITS, limit, "deflate")
        except BodyError as exc:
            if exc.status == 413:
                raise
            return _inflate(body, -zlib.MAX_WBITS, limit, "deflate")
    raise BodyError(
        415, f"unsupported Content-Encoding {encoding!r}: send gzip, deflate or identity"
    )


def _inflate(body: bytes, wbits: int, limit: int, name: str) -> bytes:
    too_large = BodyError(413, f"{name} body inflates beyond the {limit}-byte limit")
    out = bytearray()
    data = body
    try:
        # gzip allows several concatenated members; each needs its own decompressor.
        while True:
            inflater = zlib.decompressobj(wbits)
            # Asking for one byte more than the room left detects a bomb without ever
            # holding more than ``limit + 1`` inflated bytes.
            out += inflater.decompress(data, limit - len(out) + 1)
            if len(out) > limit:
                raise too_large
            if not inflater.eof:
                raise BodyError(400, f"truncated {name} body")
            data = inflater.unused_data
            if not wbits & 16 or not data.strip(b"\x00"):
                break
    except zlib.error as exc:
        raise BodyError(400, f"malformed {name} body: {exc}") from None
    return bytes(out)


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Parse a binary ``ExportTraceServiceRequest`` or raise 400."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        return ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        detail = str(exc) or type(exc).__name__
        raise BodyError(400, f"malformed protobuf ExportTraceServiceRequest: {detail}") from None


# A ``\uD800``-``\uDFFF`` escape: JSON can spell a lone surrogate, which is no Unicode
# text (RFC 8259 §8.2) and cannot be stored as UTF-8.
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def parse_json(body: bytes | str) -> Any:
    """``json.loads`` with every failure as a 400, lone surrogates included."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BodyError(400, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise BodyError(400, "malformed JSON: nested too deeply") from None
    if isinstance(body, str) or _SURROGATE_ESCAPE.search(body):
        # Only then walk the document: a valid pair decodes to one character and
        # encodes; a lone surrogate does not.
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode("ascii")
            raise BodyError(
                400, f"malformed JSON: a lone UTF-16 surrogate ({bad}) is not text"
            ) from None
    return document


def decode_json(body: bytes | str) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON ``ExportTraceServiceRequest`` (a protobuf message) or raise 400."""
    return request_from_json(parse_json(body))


def json_for_flattening(document: Any) -> TraceRequest:
    """What the flattener reads from a parsed OTLP/JSON document: the fast reader's
    objects for canonical JSON, else the reference parser's message (or its 400)."""
    from infermeter.collectors._otlp_json import NotCanonical, read_json_request

    try:
        return read_json_request(document)
    except NotCanonical:
        return request_from_json(document)


def request_from_json(document: Any) -> ExportTraceServiceRequest:
    """An already-parsed OTLP/JSON document as a request message, or raise 400."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    if not isinstance(document, dict):
        raise BodyError(400, "malformed OTLP/JSON: the body must be a JSON object")
    _ids_to_base64(document)
    try:
        return json_format.ParseDict(
            document, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BodyError(400, f"malformed OTLP/JSON ExportTraceServiceRequest: {detail}") from None


_ID_BYTES: Final = {
    "traceId": 16,
    "trace_id": 16,
    "spanId": 8,
    "span_id": 8,
    "parentSpanId": 8,
    "parent_span_id": 8,
}


def _ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite OTLP/JSON hex ids as the base64 the proto3 JSON parser expects (in place)."""
    for resource_spans in _items(document, "resourceSpans", "resource_spans"):
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for index, span in enumerate(_items(scope_spans, "spans")):
                if not isinstance(span, dict):
                    continue
                fix_json_ids(span, f"span {index}")
                for link in _items(span, "links"):
                    if isinstance(link, dict):
                        fix_json_ids(link, f"span {index}")


def _items(container: Any, *names: str) -> list[Any]:
    if not isinstance(container, dict):
        return []
    for name in names:
        value = container.get(name)
        if isinstance(value, list):
            return value
    return []


def fix_json_ids(obj: dict[str, Any], where: str, ids: Mapping[str, int] = _ID_BYTES) -> None:
    """Rewrite the OTLP/JSON ids of ``obj`` (hex per the spec, or base64 as some SDKs send)
    to the base64 protobuf's JSON mapping expects; ``where`` names ``obj`` in the 400."""
    for key, size in ids.items():
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            continue
        if len(value) == 2 * size:
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raise BodyError(
                    400, f"malformed OTLP/JSON: {where}: {key} {value[:40]!r} is not hex"
                ) from None
        else:
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != size:
                raise BodyError(
                    400,
                    f"malformed OTLP/JSON: {where}: {key} must be {2 * size} hex digits, "
                    f"got {value[:40]!r}",
                )
        obj[key] = base64.b64encode(raw).decode("ascii")


def decode_request(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    limits: BodyLimits = BodyLimits(),
) -> TraceRequest:
    """Decode one ``POST /v1/traces`` body (any supported type and encoding) into what
    :func:`~infermeter.collectors._flatten.flatten_request` reads."""
    kind = media_type(content_type)
    if len(body) > limits.max_body_bytes:
        raise BodyError(
            413, f"body of {len(body)} bytes exceeds the {limits.max_body_bytes}-byte limit"
        )
    raw = decompress(body, content_encoding, limits.max_decompressed_bytes)
    if kind == PROTOBUF:
        return decode_protobuf(raw)
    return json_for_flattening(parse_json(raw))


_POINT_KINDS: Final = ("gauge", "sum", "histogram", "exponential_histogram", "summary")
_POINT_KINDS_JSON: Final = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


def count_metrics_protobuf(body: bytes) -> tuple[int, int]:
    """(metrics, data points) of a binary ``ExportMetricsServiceRequest``, or raise 400."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    try:
        request = ExportMetricsServiceRequest.FromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        detail = str(exc) or type(exc).__name__
        raise BodyError(400, f"malformed protobuf ExportMetricsServiceRequest: {detail}") from None
    metrics = points = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                metrics += 1
                which = metric.WhichOneof("data")
                if which in _POINT_KINDS:
                    points += len(getattr(metric, which).data_points)
    return metrics, points


def count_metrics_json(body: bytes) -> tuple[int, int]:
    """(metrics, data points) of an OTLP/JSON ``ExportMetricsServiceRequest``, or raise 400
    when it is not a JSON object of that shape."""
    document = parse_json(body)

    def items(obj: Any, camel: str, snake: str) -> list[Any]:
        if not isinstance(obj, dict):
            raise BodyError(400, "malformed OTLP/JSON metrics: expected objects")
        value = obj.get(camel, obj.get(snake))
        if value is None:
            return []
        if not isinstance(value, list):
            raise BodyError(400, f"malformed OTLP/JSON metrics: {camel} must be an array")
        return value

    metrics = points = 0
    for resource_metrics in items(document, "resourceMetrics", "resource_metrics"):
        for scope_metrics in items(resource_metrics, "scopeMetrics", "scope_metrics"):
            for metric in items(scope_metrics, "metrics", "metrics"):
                metrics += 1
                if not isinstance(metric, dict):
                    raise BodyError(400, "malformed OTLP/JSON metrics: expected objects")
                for camel, snake in zip(_POINT_KINDS_JSON, _POINT_KINDS, strict=True):
                    data = metric.get(camel, metric.get(snake))
                    if data is not None:
                        points += len(items(data, "dataPoints", "data_points"))
    return metrics, points
