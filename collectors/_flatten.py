"""OTLP trace messages → Arrow tables with the store's columns.

This is the collector's hot path (the DESIGN measured it as the step that dominates
ingest), so it is written as one tight loop per span over pre-built lookup tables
rather than as a chain of small helpers: every typed column has one entry in
``_SPAN_SOURCES`` naming the attribute it comes from, the value type it accepts and its
unit conversion.

Rules (they are the store's contract, see DESIGN.md "Store"):

- A typed column takes its span attribute, else (for resource-level facts) the resource
  attribute. A source attribute is dropped from ``attributes`` / ``resource_attributes``
  exactly when its value is the one stored in the typed column — no double storage, and
  nothing lost when a span overrides its resource.
- A value of the wrong OTLP type (a string where tokens belong) leaves the typed column
  NULL and stays, raw, in the JSON column: a batch is never rejected for it.
- Spans whose identity or timing is unusable (ids of the wrong length or all zero, no
  start time, end before start) are rejected one by one and counted for the OTLP
  ``partial_success`` answer; the rest of the batch is kept.
- ``infermeter.embedding`` events become ``embeddings`` rows carrying the span's tenant,
  model, prompt version, endpoint and service; other events go to ``events``.
- A bearer token bound to a tenant pins ``tenant`` whatever the span claims; a
  different claim is kept for audit as ``infermeter.claimed_tenant`` in ``attributes``.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent import semconv as sc
from infermeter.collectors._conventions import (
    ATTRIBUTE_MAP,
    DEFAULT_TENANT_ATTRIBUTES,
    RATE_LIMIT_MARKERS,
    SIGNAL_MAP,
)
from infermeter.collectors._schema import EMBEDDING_COLUMNS, SPAN_COLUMNS, arrow_schema

if TYPE_CHECKING:
    import pyarrow as pa
    from infermeter.collectors._otlp_json import JsonRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "CLAIMED_TENANT",
    "Flattened",
    "Limits",
    "flatten_request",
    "is_rate_limit_error",
    "plain_value",
    "to_arrow",
    "to_json",
]

# Where a pinned tenant keeps the tenant a span claimed (no convention exists).
CLAIMED_TENANT: Final = sc.INFERMETER_CLAIMED_TENANT

_COLUMN_INDEX: Final = {name: i for i, (name, _) in enumerate(SPAN_COLUMNS)}
_WIDTH: Final = len(SPAN_COLUMNS)

# Accepted OTLP value kinds per column type (the AnyValue oneof names).
_STR: Final = frozenset({"string_value"})
_INT: Final = frozenset({"int_value"})
_NUM: Final = frozenset({"int_value", "double_value"})
_BOOL: Final = frozenset({"bool_value"})


_SIGNALS: Final = {signal.signal: signal.sources for signal in SIGNAL_MAP}
# Model servers that do not use the GenAI names (read after the typed attributes; names in
# SIGNAL_MAP): Hugging Face TGI and TEI record ``queue_time`` / ``inference_time`` as Rust
# Duration debug strings ("1.5ms"); TEI counts ``compute_tokens``, TGI ``prompt_tokens`` /
# ``generated_tokens`` (debug-formatted integers). Triton (OpenTelemetry mode) names the
# model ``triton.model_name`` and marks QUEUE_START / COMPUTE_START / COMPUTE_END as events.
(_TGI_INFERENCE_TIME,) = _SIGNALS["server_inference_time"]
(_TGI_QUEUE_TIME,) = _SIGNALS["server_queue_time"]
_TGI_TOKENS: Final = tuple(
    [(name, "input_tokens") for name in _SIGNALS["server_input_tokens"]]
    + [(name, "output_tokens") for name in _SIGNALS["server_output_tokens"]]
)
# A Rust ``Duration`` debug string and its unit in milliseconds (the ClickHouse view
# generator, collectors/_clickhouse_schema.py, reads both).
_RUST_DURATION: Final = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ns|µs|us|ms|s)\s*$")
_RUST_UNIT_MS: Final = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}
_TRITON_EVENTS: Final = frozenset(_SIGNALS["server_events"])


@dataclass(frozen=True, slots=True)
class _Source:
    column: int
    accepts: frozenset[str]
    scale: float | None = None  # multiply (unit conversion); None keeps the value's type
    offset: int = 0  # added to integers (attempt = 1 + retries)
    # Accepted integer range (the column's SQL type); outside it the value is wrong.
    low: int = -(1 << 63)
    high: int = (1 << 63) - 1
    # True when integers need the offset or the range check (narrower than BIGINT).
    bounded: bool = False


def _src(
    column: str,
    accepts: frozenset[str],
    scale: float | None = None,
    offset: int = 0,
    *,
    low: int = -(1 << 63),
    high: int = (1 << 63) - 1,
) -> _Source:
    bounded = offset != 0 or low != -(1 << 63) or high != (1 << 63) - 1
    return _Source(_COLUMN_INDEX[column], accepts, scale, offset, low, high, bounded)


_ACCEPTS: Final[dict[str, frozenset[str]]] = {
    "string": _STR,
    "int": _INT,
    "number": _NUM,
    "bool": _BOOL,
}
# attempt is an INTEGER: 0 <= retries < 2**31 - 1.
_RANGES: Final[dict[str, tuple[int, int]]] = {
    "attempt": (0, (1 << 31) - 2),
    "gpu_count": (0, (1 << 31) - 1),
}


def _sources_from_map() -> tuple[dict[str, _Source], dict[str, tuple[int, _Source]]]:
    """ATTRIBUTE_MAP as lookup tables: each column's newest source name (read in the hot
    loop), and the older names with their rank (read only when present, in rank order)."""
    primary: dict[str, _Source] = {}
    older: dict[str, tuple[int, _Source]] = {}
    for mapping in ATTRIBUTE_MAP:
        low, high = _RANGES.get(mapping.column, (-(1 << 63), (1 << 63) - 1))
        source = _src(
            mapping.column,
            _ACCEPTS[mapping.type],
            mapping.scale,
            mapping.offset,
            low=low,
            high=high,
        )
        for rank, name in enumerate(mapping.sources):
            if name in primary or name in older:
                raise ValueError(f"attribute {name!r} is mapped to two columns")
            if rank == 0:
                primary[name] = source
            else:
                older[name] = (rank, source)
    return primary, older


_SPAN_SOURCES, _SECONDARY_SOURCES = _sources_from_map()
# Resource-level facts: the span attribute wins, the resource attribute fills in.
_RESOURCE_FALLBACKS: Final[frozenset[str]] = frozenset(
    mapping.sources[0] for mapping in ATTRIBUTE_MAP if mapping.resource
)
_RESOURCE_ONLY: Final[dict[str, _Source]] = {
    sc.SERVICE_NAME: _src("service_name", _STR),
    sc.SERVICE_INSTANCE_ID: _src("service_instance", _STR),
}

_I_TRACE: Final = _COLUMN_INDEX["trace_id"]
_I_SPAN: Final = _COLUMN_INDEX["span_id"]
_I_PARENT: Final = _COLUMN_INDEX["parent_span_id"]
_I_NAME: Final = _COLUMN_INDEX["name"]
_I_KIND: Final = _COLUMN_INDEX["kind"]
_I_SERVICE: Final = _COLUMN_INDEX["service_name"]
_I_INSTANCE: Final = _COLUMN_INDEX["service_instance"]
_I_START: Final = _COLUMN_INDEX["start_time"]
_I_END: Final = _COLUMN_INDEX["end_time"]
_I_DURATION: Final = _COLUMN_INDEX["duration_ms"]
_I_STATUS: Final = _COLUMN_INDEX["status_code"]
_I_STATUS_MESSAGE: Final = _COLUMN_INDEX["status_message"]
_I_ENTRY: Final = _COLUMN_INDEX["is_entry"]
_I_TENANT: Final = _COLUMN_INDEX["tenant"]
_I_MODEL: Final = _COLUMN_INDEX["model"]
_I_PROMPT_VERSION: Final = _COLUMN_INDEX["prompt_version"]
_I_ENDPOINT: Final = _COLUMN_INDEX["endpoint"]
_I_ERROR_TYPE: Final = _COLUMN_INDEX["error_type"]
_I_RETRY_AFTER: Final = _COLUMN_INDEX["retry_after_s"]
_I_TTFT: Final = _COLUMN_INDEX["ttft_ms"]
_I_STREAM: Final = _COLUMN_INDEX["stream"]
_I_COLD: Final = _COLUMN_INDEX["cold_start"]
_I_THROTTLED: Final = _COLUMN_INDEX["throttled"]
_I_ATTEMPT: Final = _COLUMN_INDEX["attempt"]
_I_QUEUE_MS: Final = _COLUMN_INDEX["queue_ms"]
_I_MODEL_MS: Final = _COLUMN_INDEX["model_ms"]
_I_ATTRIBUTES: Final = _COLUMN_INDEX["attributes"]
_I_RESOURCE: Final = _COLUMN_INDEX["resource_attributes"]
_I_SCOPE: Final = _COLUMN_INDEX["scope_name"]
_I_SCOPE_VERSION: Final = _COLUMN_INDEX["scope_version"]
_I_EVENTS: Final = _COLUMN_INDEX["events"]
_I_LINKS: Final = _COLUMN_INDEX["links"]

_SCALARS: Final = frozenset({"int_value", "double_value", "bool_value"})
_INFINITIES: Final = (math.inf, -math.inf)
_KINDS: Final = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUSES: Final = ("UNSET", "OK", "ERROR")
_MAX_INT64: Final = (1 << 63) - 1
_ZERO_TRACE: Final = bytes(16)
_ZERO_SPAN: Final = bytes(8)
# SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK (OTLP 1.1).
_REMOTE_PARENT: Final = 0x100 | 0x200
_HTTP_STATUS: Final = _SIGNALS["http_status"]
_RETRY_AFTER_HEADERS: Final = _SIGNALS["retry_after"]
_FIRST_CHUNK_EVENTS: Final = frozenset(_SIGNALS["first_chunk_event"])
_EXCEPTION_TYPE: Final = frozenset(_SIGNALS["exception_event"])
_STREAM_TTFT: Final = _SIGNALS["stream_ttft"]
_EXCEPTION_EVENT: Final = "exception"
_HTTP_KINDS: Final = frozenset({2, 3})  # SERVER, CLIENT
_TOO_MANY_REQUESTS: Final = 429

_encode_json: Final[Callable[[Any], str]] = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
).encode


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-value caps and reading options applied while flattening (the body-size caps
    apply earlier)."""

    max_attribute_length: int = 16_384  # characters of one string value; longer is cut
    max_vector_dim: int = 8_192  # an embedding with more dimensions is dropped
    # Span attributes read, in order, for the tenant when no ``tenant.id`` (span or
    # resource) names one (INFERMETER_TENANT_ATTRIBUTES); ``a.b`` also reads key ``b`` of
    # a JSON-object string attribute ``a`` (OpenInference's ``metadata``).
    tenant_attributes: tuple[str, ...] = DEFAULT_TENANT_ATTRIBUTES


@dataclass(slots=True)
class Flattened:
    """Rows ready for the store, and what the OTLP response must report."""

    spans: list[list[Any]]
    embeddings: list[tuple[Any, ...]]
    rejected_spans: int = 0
    # ``events`` rows (collectors._logs.event_row) for evaluation results sent as span
    # events; they also stay in the span's own ``events`` JSON.
    events: list[list[Any]] = field(default_factory=list)
    rejection_reasons: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)

    def message(self) -> str:
        """The ``partial_success.error_message``: rejections first, then warnings."""
        parts = [f"{n} span(s) rejected: {why}" for why, n in self.rejection_reasons.items()]
        parts += [f"{n} {what}" for what, n in self.warnings.items()]
        return "; ".join(parts)


def _plain(value: AnyValue, limits: Limits, warnings: dict[str, int]) -> Any:  # noqa: PLR0911
    """An AnyValue as a JSON-ready Python value (bytes as base64, like OTLP/JSON)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        text = value.string_value
        if len(text) > limits.max_attribute_length:
            warnings[_TRUNCATED] = warnings.get(_TRUNCATED, 0) + 1
            return text[: limits.max_attribute_length]
        return text
    if which is None:
        return None
    if which == "array_value":
        return [_plain(item, limits, warnings) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value, limits, warnings) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, which)


_TRUNCATED: Final = "attribute value(s) truncated to the maximum attribute length"


def _finite_or_text(value: Any) -> Any:
    """Replace NaN/±Infinity (not valid JSON) with the strings proto3 JSON uses."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite_or_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_text(v) for v in value]
    return value


def _json(value: Any) -> str:
    try:
        return _encode_json(value)
    except ValueError:
        return _encode_json(_finite_or_text(value))


def plain_value(value: AnyValue, limits: Limits, warnings: dict[str, int]) -> Any:
    """An OTLP ``AnyValue`` as a JSON-ready Python value (for the logs path)."""
    return _plain(value, limits, warnings)


def to_json(value: Any) -> str:
    """Compact JSON with non-finite numbers as proto3 JSON's strings."""
    return _json(value)


def _attributes(
    kvs: Iterable[KeyValue], limits: Limits, warnings: dict[str, int]
) -> dict[str, Any]:
    return {kv.key: _plain(kv.value, limits, warnings) for kv in kvs}


def _typed(  # noqa: PLR0911 — one exit per OTLP value kind
    value: AnyValue, source: _Source, limits: Limits, warnings: dict[str, int]
) -> tuple[bool, Any]:
    """(accepted, column value); accepted is False for a wrong type or a non-finite number."""
    which = value.WhichOneof("value")
    if which not in source.accepts:
        return False, None
    if which == "string_value":
        text = value.string_value
        if len(text) > limits.max_attribute_length:
            warnings[_TRUNCATED] = warnings.get(_TRUNCATED, 0) + 1
            text = text[: limits.max_attribute_length]
        return True, text
    if which == "bool_value":
        return True, value.bool_value
    if which == "int_value":
        number = value.int_value
        if source.scale is not None:
            return True, number * source.scale
        if source.bounded and not source.low <= number <= source.high:
            return False, None
        return True, number + source.offset
    real = value.double_value
    if not math.isfinite(real):
        return False, None
    return True, real * (source.scale or 1.0)


@dataclass(slots=True)
class _Resource:
    """What every span of one ResourceSpans shares, computed once."""

    service_name: str | None = None
    service_instance: str | None = None
    # column index -> (attribute key, typed value, raw value) for span-overridable facts
    fallbacks: dict[int, tuple[str, Any, Any]] = field(default_factory=dict)
    remaining: dict[str, Any] = field(default_factory=dict)
    remaining_json: str = "{}"


def _resource(kvs: Iterable[KeyValue], limits: Limits, warnings: dict[str, int]) -> _Resource:
    out = _Resource()
    host: str | None = None
    for kv in kvs:
        key = kv.key
        value = kv.value
        only = _RESOURCE_ONLY.get(key)
        if only is not None:
            ok, typed = _typed(value, only, limits, warnings)
            if ok:
                if only.column == _I_SERVICE:
                    out.service_name = typed
                else:
                    out.service_instance = typed
                continue
        elif key in _RESOURCE_FALLBACKS:
            source = _SPAN_SOURCES[key]
            ok, typed = _typed(value, source, limits, warnings)
            if ok:
                out.fallbacks[source.column] = (key, typed, _plain(value, limits, warnings))
                continue
        raw = _plain(value, limits, warnings)
        if key == sc.HOST_NAME and isinstance(raw, str):
            host = raw
        out.remaining[key] = raw
    if out.service_instance is None:
        out.service_instance = host
    out.remaining_json = _json(out.remaining)
    return out


def _pin_tenant(
    row: list[Any],
    rest: dict[str, Any],
    fallbacks: dict[int, tuple[str, Any, Any]],
    tenant: str,
) -> None:
    claimed = row[_I_TENANT]
    if claimed is None and _I_TENANT in fallbacks:
        claimed = fallbacks[_I_TENANT][1]
    wrong_typed_claim = rest.pop(sc.TENANT_ID, None)
    if claimed is None:
        claimed = wrong_typed_claim
    if claimed is not None and claimed != tenant:
        rest[CLAIMED_TENANT] = claimed
    row[_I_TENANT] = tenant


def _throttle_signal(rest: dict[str, Any], error_type: str | None, kind: int, events: Any) -> bool:
    """An HTTP 429 on a client or server span, or an ``error.type`` (else an exception
    event's ``exception.type``) naming a rate-limit class or the status itself.

    Internal spans are skipped for the status: ASGI frameworks record each ``http send``
    of a response as an internal span carrying the status the server span already has.
    """
    if kind in _HTTP_KINDS:
        for key in _HTTP_STATUS:
            status = rest.get(key)
            if status is not None and not isinstance(status, bool):
                if status in (_TOO_MANY_REQUESTS, "429"):
                    return True
                break
    if error_type is not None:
        return is_rate_limit_error(error_type)
    for event in events:
        if event.name != _EXCEPTION_EVENT:
            continue
        for kv in event.attributes:
            if (
                kv.key in _EXCEPTION_TYPE
                and kv.value.WhichOneof("value") == "string_value"
                and is_rate_limit_error(kv.value.string_value)
            ):
                return True
    return False


def is_rate_limit_error(error_type: str) -> bool:
    """True for ``RateLimitError``, ``openai.RateLimitError``, ``<class
    'openai.RateLimitError'>``, ``ThrottlingException``, ``429`` …"""
    text = error_type.strip()
    if text.startswith("<class ") and text.endswith(">"):
        text = text[7:-1].strip("'\"")
    if text == "429":
        return True
    name = text.rsplit(".", 1)[-1].lower().replace("_", "")
    return any(marker in name for marker in RATE_LIMIT_MARKERS)


def _stream_ttft(rest: dict[str, Any]) -> float | None:
    """OpenLIT's time to first token (seconds) of a streamed span, in milliseconds."""
    for key in _STREAM_TTFT:
        value = rest.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ms = value * 1000.0
            if math.isfinite(ms) and ms >= 0:
                return ms
    return None


def _retry_after(rest: dict[str, Any]) -> float | None:
    """Seconds from a captured ``Retry-After`` response header (HTTP semconv records
    headers as string arrays); an HTTP date or anything else unreadable gives None."""
    for key in _RETRY_AFTER_HEADERS:
        value = rest.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, bool) or value is None:
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


@functools.lru_cache(maxsize=16)
def _json_candidates(names: tuple[str, ...]) -> tuple[tuple[int, str, tuple[str, ...]], ...]:
    """For each dotted name, every (rank, holder attribute, key path) split, longest holder
    first: ``metadata.tenant`` → (``metadata``, (``tenant``,)). Computed once per list."""
    out = []
    for rank, name in enumerate(names):
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            out.append((rank, ".".join(parts[:cut]), tuple(parts[cut:])))
    return tuple(out)


def _tenant_from(rest: dict[str, Any], names: tuple[str, ...], max_len: int) -> str | None:
    """The first configured tenant attribute present as a non-empty string (or number);
    ``a.b`` also reads key ``b`` of attribute ``a`` holding a JSON object (OpenInference's
    ``metadata``), the longest holder name first."""
    found: dict[int, Any] = {}
    value: Any
    for rank, name in enumerate(names):
        value = rest.get(name)
        if value is not None:
            found[rank] = value
    for rank, holder, path in _json_candidates(names):
        if rank in found:
            continue
        text = rest.get(holder)
        if not isinstance(text, str) or not text.startswith("{"):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            found[rank] = value
    for rank in sorted(found):
        value = found[rank]
        if isinstance(value, (bool, list, dict)):
            continue
        tenant = str(value)
        if tenant:
            return tenant[:max_len]
    return None


def _rank(entry: tuple[int, str, _Source, Any]) -> int:
    return entry[0]


def _reject(result: Flattened, reason: str) -> None:
    result.rejected_spans += 1
    result.rejection_reasons[reason] = result.rejection_reasons.get(reason, 0) + 1


# One loop on purpose: the hot path (see the module docstring).
def flatten_request(  # noqa: PLR0912, PLR0915
    request: ExportTraceServiceRequest | JsonRequest,
    *,
    limits: Limits = Limits(),
    tenant: str | None = None,
) -> Flattened:
    """Flatten every span of ``request`` into store rows (see the module rules).

    ``tenant`` pins the tenant of every span and embedding (an ingest token's binding).
    Never raises for content: unusable spans are counted in the result instead.
    """
    result = Flattened(spans=[], embeddings=[])
    warnings = result.warnings
    rows = result.spans
    template: list[Any] = [None] * _WIDTH
    span_sources = _SPAN_SOURCES
    secondary_sources = _SECONDARY_SOURCES
    max_len = limits.max_attribute_length
    tenant_attributes = limits.tenant_attributes
    for resource_spans in request.resource_spans:
        res = _resource(resource_spans.resource.attributes, limits, warnings)
        template[_I_SERVICE] = res.service_name
        template[_I_INSTANCE] = res.service_instance
        template[_I_RESOURCE] = res.remaining_json
        fallbacks = res.fallbacks
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            template[_I_SCOPE] = scope.name or None
            template[_I_SCOPE_VERSION] = scope.version or None
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                parent = span.parent_span_id
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
                    _reject(result, "trace_id must be 16 bytes and not all zero")
                    continue
                if len(span_id) != 8 or span_id == _ZERO_SPAN:
                    _reject(result, "span_id must be 8 bytes and not all zero")
                    continue
                if parent and len(parent) != 8:
                    _reject(result, "parent_span_id must be empty or 8 bytes")
                    continue
                if start == 0 or start > _MAX_INT64 or end > _MAX_INT64:
                    _reject(result, "start_time_unix_nano missing or out of range")
                    continue
                if end < start:
                    _reject(result, "end_time_unix_nano before start_time_unix_nano")
                    continue
                row = template.copy()
                row[_I_TRACE] = trace_id.hex()
                row[_I_SPAN] = span_id.hex()
                row[_I_PARENT] = parent.hex() if parent and parent != _ZERO_SPAN else None
                row[_I_NAME] = span.name
                kind = span.kind
                row[_I_KIND] = _KINDS[kind] if 0 <= kind < len(_KINDS) else str(kind)
                row[_I_START] = start // 1000
                row[_I_END] = end // 1000
                row[_I_DURATION] = (end - start) / 1e6
                status = span.status
                code = status.code
                row[_I_STATUS] = _STATUSES[code] if 0 <= code < len(_STATUSES) else str(code)
                row[_I_STATUS_MESSAGE] = status.message or None

                rest: dict[str, Any] = {}
                secondary: list[tuple[int, str, _Source, AnyValue]] | None = None
                for kv in span.attributes:
                    key = kv.key
                    value = kv.value
                    which = value.WhichOneof("value")
                    scalar: Any
                    if which == "string_value":
                        scalar = value.string_value
                        if len(scalar) > max_len:
                            warnings[_TRUNCATED] = warnings.get(_TRUNCATED, 0) + 1
                            scalar = scalar[:max_len]
                    elif which in _SCALARS:
                        scalar = getattr(value, which)
                    else:  # arrays, maps, bytes, empty: no typed column takes them
                        rest[key] = _plain(value, limits, warnings)
                        continue
                    source = span_sources.get(key)
                    if source is not None and which in source.accepts:
                        if source.scale is not None:
                            scalar = scalar * source.scale
                            if not math.isfinite(scalar):
                                rest[key] = getattr(value, which)
                                continue
                        elif source.bounded:
                            if not source.low <= scalar <= source.high:
                                rest[key] = scalar
                                continue
                            scalar += source.offset
                        row[source.column] = scalar
                        continue
                    older = secondary_sources.get(key)
                    if older is not None:
                        secondary = secondary or []
                        secondary.append((older[0], key, older[1], value))
                        continue
                    rest[key] = scalar
                if secondary:
                    # Older convention names fill only what newer ones left empty, the
                    # newest present first.
                    secondary.sort(key=_rank)
                    for _, key, source, value in secondary:
                        ok, typed = _typed(value, source, limits, warnings)
                        if ok and row[source.column] is None:
                            row[source.column] = typed
                        else:
                            rest[key] = _plain(value, limits, warnings)

                if tenant is not None:
                    _pin_tenant(row, rest, fallbacks, tenant)
                resource_json = res.remaining_json
                if fallbacks:
                    overridden: dict[str, Any] | None = None
                    for column, (key, typed, raw) in fallbacks.items():
                        if column == _I_TENANT and tenant is not None:
                            continue
                        current = row[column]
                        if current is None:
                            row[column] = typed
                        elif current != typed:
                            # The span overrides its resource: keep the resource's value.
                            overridden = overridden or dict(res.remaining)
                            overridden[key] = raw
                    if overridden is not None:
                        resource_json = _json(overridden)
                row[_I_RESOURCE] = resource_json

                if row[_I_TENANT] is None and tenant_attributes:
                    row[_I_TENANT] = _tenant_from(rest, tenant_attributes, max_len)

                # Absent flags get their meaning ("not cold", "first attempt"); a value
                # of the wrong type stays NULL, its raw form in ``attributes``.
                if row[_I_ENTRY] is None and sc.INFERMETER_ENTRY not in rest:
                    # A root span, or one whose parent is remote (OTLP span flags carry
                    # "has is_remote" 0x100 and "is_remote" 0x200): a request entering
                    # this service. Server/consumer spans whose parent lives in another
                    # service are found by analytics, which sees every batch.
                    row[_I_ENTRY] = (
                        row[_I_PARENT] is None or span.flags & _REMOTE_PARENT == _REMOTE_PARENT
                    )
                if row[_I_COLD] is None and sc.FAAS_COLDSTART not in rest:
                    row[_I_COLD] = False
                if row[_I_THROTTLED] is None and sc.INFERMETER_THROTTLED not in rest:
                    row[_I_THROTTLED] = _throttle_signal(
                        rest, row[_I_ERROR_TYPE], kind, span.events
                    )
                    if row[_I_THROTTLED] and row[_I_RETRY_AFTER] is None:
                        row[_I_RETRY_AFTER] = _retry_after(rest)
                if row[_I_ATTEMPT] is None and sc.INFERMETER_RETRIES not in rest:
                    row[_I_ATTEMPT] = 1

                if _TGI_INFERENCE_TIME in rest:
                    _hugging_face(row, rest)
                if span.events:
                    row[_I_EVENTS] = _events(span, row, result, limits)
                    if row[_I_MODEL_MS] is None:
                        _triton_events(span, row)
                if row[_I_TTFT] is None and row[_I_STREAM]:
                    row[_I_TTFT] = _stream_ttft(rest)
                if span.links:
                    row[_I_LINKS] = _json(
                        [
                            {
                                "trace_id": link.trace_id.hex(),
                                "span_id": link.span_id.hex(),
                                "attributes": _attributes(link.attributes, limits, warnings),
                            }
                            for link in span.links
                        ]
                    )
                row[_I_ATTRIBUTES] = _json(rest) if rest else "{}"
                rows.append(row)
    return result


def _rust_duration_ms(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    match = _RUST_DURATION.match(value)
    if match is None:
        return None
    return float(match.group(1)) * _RUST_UNIT_MS[match.group(2)]


def _debug_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= _MAX_INT64 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number <= _MAX_INT64 else None
    return None


def _hugging_face(row: list[Any], rest: dict[str, Any]) -> None:
    """TGI / TEI span fields → queue_ms, model_ms and token columns (only when the column is
    still empty; a converted field leaves ``attributes``)."""
    inference = _rust_duration_ms(rest.get(_TGI_INFERENCE_TIME))
    if inference is None:
        return  # not a Hugging Face server's span: a user attribute of the same name
    if row[_I_MODEL_MS] is None:
        row[_I_MODEL_MS] = inference
        del rest[_TGI_INFERENCE_TIME]
    queue = _rust_duration_ms(rest.get(_TGI_QUEUE_TIME))
    if queue is not None and row[_I_QUEUE_MS] is None:
        row[_I_QUEUE_MS] = queue
        del rest[_TGI_QUEUE_TIME]
    for key, column in _TGI_TOKENS:
        count = _debug_int(rest.get(key))
        index = _COLUMN_INDEX[column]
        if count is not None and row[index] is None:
            row[index] = count
            del rest[key]


def _triton_events(span: Any, row: list[Any]) -> None:
    """Triton's QUEUE_START → COMPUTE_START is queue time, COMPUTE_START → COMPUTE_END time
    in the model (when the span carries those events)."""
    moments: dict[str, int] = {}
    for event in span.events:
        if event.name in _TRITON_EVENTS:
            moments[event.name] = event.time_unix_nano
    start = moments.get("COMPUTE_START")
    if start is None:
        return
    end = moments.get("COMPUTE_END")
    if end is not None and end >= start:
        row[_I_MODEL_MS] = (end - start) / 1e6
    queued = moments.get("QUEUE_START")
    if queued is not None and start >= queued and row[_I_QUEUE_MS] is None:
        row[_I_QUEUE_MS] = (start - queued) / 1e6


_EMBEDDING_DROPPED_LONG: Final = "embedding(s) dropped: more dimensions than the maximum"
_EMBEDDING_DROPPED_BAD: Final = "embedding(s) dropped: vector missing or not numeric"


def _events(span: Any, row: list[Any], result: Flattened, limits: Limits) -> str | None:
    """Embedding events → ``result.embeddings``; the others → the ``events`` JSON."""
    warnings = result.warnings
    kept: list[dict[str, Any]] = []
    first_chunk_ns: int | None = None
    for event in span.events:
        if (
            event.name in _FIRST_CHUNK_EVENTS
            and event.time_unix_nano
            and (first_chunk_ns is None or event.time_unix_nano < first_chunk_ns)
        ):
            first_chunk_ns = event.time_unix_nano
        if event.name != sc.EMBEDDING_EVENT:
            attributes = _attributes(event.attributes, limits, warnings)
            kept.append(
                {
                    "name": event.name,
                    "time_unix_nano": event.time_unix_nano,
                    "attributes": attributes,
                }
            )
            if event.name == sc.GEN_AI_EVALUATION_RESULT:
                _evaluation_event(span, event, row, attributes, result)
            continue
        kind: str | None = None
        vector: list[float] | None = None
        for kv in event.attributes:
            if kv.key == sc.EMBEDDING_KIND and kv.value.WhichOneof("value") == "string_value":
                kind = kv.value.string_value[: limits.max_attribute_length]
            elif kv.key == sc.EMBEDDING_VECTOR:
                vector = _vector(kv.value)
        if vector is None:
            warnings[_EMBEDDING_DROPPED_BAD] = warnings.get(_EMBEDDING_DROPPED_BAD, 0) + 1
            continue
        if len(vector) > limits.max_vector_dim:
            warnings[_EMBEDDING_DROPPED_LONG] = warnings.get(_EMBEDDING_DROPPED_LONG, 0) + 1
            continue
        time_ns = event.time_unix_nano or span.start_time_unix_nano
        result.embeddings.append(
            (
                row[_I_TRACE],
                row[_I_SPAN],
                min(time_ns, _MAX_INT64) // 1000,
                row[_I_SERVICE],
                row[_I_TENANT],
                row[_I_MODEL],
                row[_I_PROMPT_VERSION],
                row[_I_ENDPOINT],
                kind,
                len(vector),
                vector,
            )
        )
    if first_chunk_ns is not None:
        # OpenLLMetry marks each streamed chunk with an event: the first one is the TTFT.
        if row[_I_TTFT] is None and first_chunk_ns >= span.start_time_unix_nano:
            row[_I_TTFT] = (first_chunk_ns - span.start_time_unix_nano) / 1e6
        if row[_I_STREAM] is None:
            row[_I_STREAM] = True
    return _json(kept) if kept else None


def _evaluation_event(
    span: Any, event: Any, row: list[Any], attributes: dict[str, Any], result: Flattened
) -> None:
    # Imported here: collectors._logs builds on this module.
    from infermeter.collectors._logs import event_row

    time_ns = min(event.time_unix_nano or span.end_time_unix_nano, _MAX_INT64)
    result.events.append(
        event_row(
            time_us=time_ns // 1000 or None,
            observed_us=None,
            trace_id=row[_I_TRACE],
            span_id=row[_I_SPAN],
            service_name=row[_I_SERVICE],
            tenant=row[_I_TENANT],
            event_name=event.name,
            attributes=attributes,
            source="span_event",
            scope_name=row[_I_SCOPE],
        )
    )


def _vector(value: AnyValue) -> list[float] | None:
    if value.WhichOneof("value") != "array_value":
        return None
    items = value.array_value.values
    out: list[float] = []
    for item in items:
        which = item.WhichOneof("value")
        if which == "double_value":
            number = item.double_value
        elif which == "int_value":
            number = float(item.int_value)
        else:
            return None
        if not math.isfinite(number):
            return None
        out.append(number)
    return out or None


_SPAN_SCHEMA: Any = None
_EMBEDDING_SCHEMA: Any = None


def to_arrow(flat: Flattened) -> tuple[pa.Table, pa.Table]:
    """The rows of ``flat`` as Arrow tables in the store's column order."""
    import pyarrow as pa

    global _SPAN_SCHEMA, _EMBEDDING_SCHEMA  # noqa: PLW0603 — built once, on first use
    if _SPAN_SCHEMA is None:
        _SPAN_SCHEMA = arrow_schema(SPAN_COLUMNS)
        _EMBEDDING_SCHEMA = arrow_schema(EMBEDDING_COLUMNS)
    spans = _columns_to_table(flat.spans, _SPAN_SCHEMA, pa)
    embeddings = _columns_to_table(flat.embeddings, _EMBEDDING_SCHEMA, pa)
    return spans, embeddings


def _columns_to_table(rows: list[Any], schema: Any, pa: Any) -> pa.Table:
    if not rows:
        return schema.empty_table()
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(column, type=f.type) for column, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)
