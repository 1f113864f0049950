"""A fast reader for canonical OTLP/JSON, feeding the same flattener as protobuf.

``google.protobuf.json_format.ParseDict`` walks descriptors in pure Python and made
OTLP/JSON ~10x slower to ingest than protobuf here. This module turns the parsed JSON
into light objects with exactly the attributes the flattener reads from a protobuf
``ExportTraceServiceRequest`` (``resource_spans``, ``span.trace_id``,
``value.WhichOneof("value")`` …), so both encodings share one set of mapping rules.

It accepts only the canonical encodings (what the OpenTelemetry SDKs and Collector
write): ids as hex (or base64 of the right length), 64-bit integers as strings or
numbers, enums as integers or names, ``NaN``/``Infinity`` strings for doubles, both
camelCase and snake_case field names, ``null`` as "absent". Anything else raises
:class:`NotCanonical`, and the caller falls back to ``ParseDict`` — the reference for
what is valid and for the error message — so the fast path never accepts or reads a
body differently from it (a property test compares their rows).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from typing import Any, Final

from infermeter.collectors._decode import BodyError

__all__ = ["JsonRequest", "NotCanonical", "read_json_request"]

_INT64: Final = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX: Final = (1 << 64) - 1
_UINT32_MAX: Final = (1 << 32) - 1
_INT32: Final = (-(1 << 31), (1 << 31) - 1)
_SPECIAL_DOUBLES: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_KIND_NAMES: Final = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_NAMES: Final = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_EMPTY: Final[list[Any]] = []


class NotCanonical(Exception):  # noqa: N818 — a signal to take the reference path
    """The body is not in the canonical form this reader handles."""


class _Values:
    __slots__ = ("values",)

    def __init__(self, values: list[Any]) -> None:
        self.values = values


class JsonAnyValue:
    """An ``AnyValue``: ``WhichOneof`` and the one field it names."""

    __slots__ = (
        "array_value",
        "bool_value",
        "bytes_value",
        "double_value",
        "int_value",
        "kvlist_value",
        "string_value",
        "which",
    )
    which: str | None
    string_value: str
    int_value: int
    double_value: float
    bool_value: bool
    bytes_value: bytes
    array_value: _Values
    kvlist_value: _Values

    def WhichOneof(self, _group: str) -> str | None:  # noqa: N802 — the protobuf API
        return self.which


class _KeyValue:
    __slots__ = ("key", "value")

    def __init__(self, key: str, value: JsonAnyValue) -> None:
        self.key = key
        self.value = value


class _Node:
    """A message with the fields the flattener reads, set as attributes."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


class JsonRequest(_Node):
    """An ``ExportTraceServiceRequest`` read from canonical OTLP/JSON."""

    resource_spans: list[Any]


_UNSET = JsonAnyValue()
_UNSET.which = None


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _list(value: Any) -> list[Any]:
    if value is None:
        return _EMPTY
    if type(value) is not list:
        raise NotCanonical
    return value


def _object(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise NotCanonical
    return value


def _string(value: Any) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise NotCanonical
    return value


def _integer(value: Any, low: int, high: int) -> int:
    if value is None:
        return 0
    if type(value) is int:
        number = value
    elif type(value) is str and value.isascii() and value.removeprefix("-").isdigit():
        number = int(value)
    else:
        raise NotCanonical
    if not low <= number <= high:
        raise NotCanonical
    return number


def _enum(value: Any, names: dict[str, int]) -> int:
    if type(value) is str:
        if value not in names:
            raise NotCanonical
        return names[value]
    return _integer(value, *_INT32)


def _double(value: Any) -> float:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise NotCanonical
        return value  # type: ignore[no-any-return]
    if kind is int:
        return float(value)
    if kind is str and value in _SPECIAL_DOUBLES:
        return _SPECIAL_DOUBLES[value]
    raise NotCanonical


def _any_value(raw: Any) -> JsonAnyValue:
    if raw is None:
        return _UNSET
    if type(raw) is not dict or len(raw) > 1:
        raise NotCanonical
    out = JsonAnyValue()
    if not raw:
        out.which = None
        return out
    ((name, value),) = raw.items()
    entry = _ANY_VALUE_FIELDS.get(name)
    if entry is None or value is None:
        raise NotCanonical
    which, convert = entry
    out.which = which
    setattr(out, which, convert(value))
    return out


def _strict_string(value: Any) -> str:
    if type(value) is not str:
        raise NotCanonical
    return value


def _strict_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise NotCanonical
    return value


def _array(value: Any) -> _Values:
    return _Values([_any_value(v) for v in _list(_object(value).get("values"))])


def _kvlist(value: Any) -> _Values:
    return _Values(_attributes(_object(value).get("values")))


def _int64(value: Any) -> int:
    return _integer(value, *_INT64)


def _base64(value: Any) -> bytes:
    if type(value) is not str:
        raise NotCanonical
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise NotCanonical from None


# JSON name (both spellings) -> (AnyValue field, converter)
_ANY_VALUE_FIELDS: Final[dict[str, tuple[str, Callable[[Any], Any]]]] = {
    json_name: (field, convert)
    for field, camel, convert in (
        ("string_value", "stringValue", _strict_string),
        ("int_value", "intValue", _int64),
        ("double_value", "doubleValue", _double),
        ("bool_value", "boolValue", _strict_bool),
        ("array_value", "arrayValue", _array),
        ("kvlist_value", "kvlistValue", _kvlist),
        ("bytes_value", "bytesValue", _base64),
    )
    for json_name in (camel, field)
}


def _attributes(raw: Any) -> list[_KeyValue]:
    out = []
    for item in _list(raw):
        if type(item) is not dict:
            raise NotCanonical
        out.append(_KeyValue(_string(item.get("key")), _any_value(item.get("value"))))
    return out


def _id(raw: Any, size: int, name: str, index: int) -> bytes:
    """A hex id (or base64 of ``size`` bytes); the same rules and messages as the
    reference path's id rewriting."""
    if raw is None or raw == "":
        return b""
    if type(raw) is not str:
        raise NotCanonical
    if len(raw) == 2 * size:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            raise BodyError(
                400, f"malformed OTLP/JSON: span {index}: {name} {raw[:40]!r} is not hex"
            ) from None
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != size:
        raise BodyError(
            400,
            f"malformed OTLP/JSON: span {index}: {name} must be {2 * size} hex digits, "
            f"got {raw[:40]!r}",
        )
    return decoded


def _span(raw: Any, index: int) -> _Node:
    span = _object(raw)
    status = span.get("status")
    status = _object(status) if status is not None else {}
    events = []
    for raw_event in _list(span.get("events")):
        event = _object(raw_event)
        time_ns = _field(event, "timeUnixNano", "time_unix_nano")
        events.append(
            _Node(
                name=_string(event.get("name")),
                time_unix_nano=_integer(time_ns, 0, _UINT64_MAX),
                attributes=_attributes(event.get("attributes")),
            )
        )
    links = []
    for raw_link in _list(span.get("links")):
        link = _object(raw_link)
        links.append(
            _Node(
                trace_id=_id(_field(link, "traceId", "trace_id"), 16, "traceId", index),
                span_id=_id(_field(link, "spanId", "span_id"), 8, "spanId", index),
                attributes=_attributes(link.get("attributes")),
            )
        )
    return _Node(
        trace_id=_id(_field(span, "traceId", "trace_id"), 16, "traceId", index),
        span_id=_id(_field(span, "spanId", "span_id"), 8, "spanId", index),
        parent_span_id=_id(
            _field(span, "parentSpanId", "parent_span_id"), 8, "parentSpanId", index
        ),
        name=_string(span.get("name")),
        kind=_enum(span.get("kind"), _KIND_NAMES),
        flags=_integer(span.get("flags"), 0, _UINT32_MAX),
        start_time_unix_nano=_integer(
            _field(span, "startTimeUnixNano", "start_time_unix_nano"), 0, _UINT64_MAX
        ),
        end_time_unix_nano=_integer(
            _field(span, "endTimeUnixNano", "end_time_unix_nano"), 0, _UINT64_MAX
        ),
        attributes=_attributes(span.get("attributes")),
        events=events,
        links=links,
        status=_Node(
            code=_enum(status.get("code"), _STATUS_NAMES), message=_string(status.get("message"))
        ),
    )


def read_json_request(document: Any) -> JsonRequest:
    """The request in a parsed OTLP/JSON document, or :class:`NotCanonical`
    (``BodyError`` for ids that are wrong in any reading)."""
    resource_spans = []
    for raw_rs in _list(_field(_object(document), "resourceSpans", "resource_spans")):
        rs = _object(raw_rs)
        resource = rs.get("resource")
        resource = _object(resource) if resource is not None else {}
        scope_spans = []
        for raw_ss in _list(_field(rs, "scopeSpans", "scope_spans")):
            ss = _object(raw_ss)
            scope = ss.get("scope")
            scope = _object(scope) if scope is not None else {}
            spans = [_span(span, index) for index, span in enumerate(_list(ss.get("spans")))]
            scope_spans.append(
                _Node(
                    scope=_Node(
                        name=_string(scope.get("name")), version=_string(scope.get("version"))
                    ),
                    spans=spans,
                )
            )
        resource_spans.append(
            _Node(
                resource=_Node(attributes=_attributes(resource.get("attributes"))),
                scope_spans=scope_spans,
            )
        )
    return JsonRequest(resource_spans=resource_spans)
