"""``annotate()`` on a call in flight, and embeddings attached to its span."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from infermeter.agent import semconv as sc_quality
from infermeter.agent._content import messages_json, normalise_messages
from infermeter.agent._duck import LOGGER, Shown, non_negative_int, seconds, text
from infermeter.agent.semconv import (
    EMBEDDING_KIND_QUERY,
    EMBEDDING_KINDS,
    FAAS_COLDSTART,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_LATENCY_TIME_IN_MODEL_INFERENCE,
    GEN_AI_LATENCY_TIME_IN_QUEUE,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_PROMPT_NAME,
    GEN_AI_PROMPT_VERSION,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    INFERMETER_ENDPOINT,
    INFERMETER_INIT_DURATION,
    INFERMETER_RETRY_AFTER,
    INFERMETER_THROTTLED,
    OPERATION_EMBEDDINGS,
    TENANT_ID,
)

if TYPE_CHECKING:
    from infermeter.agent._call import Call


__all__ = ["annotate_call", "attach_embeddings", "returns_embeddings"]

_ANNOTATIONS: Final[dict[str, tuple[str, str]]] = {
    "tenant": (TENANT_ID, "text"),
    "model": (GEN_AI_REQUEST_MODEL, "text"),
    "response_model": (GEN_AI_RESPONSE_MODEL, "text"),
    "provider": (GEN_AI_PROVIDER_NAME, "text"),
    "prompt_name": (GEN_AI_PROMPT_NAME, "text"),
    "prompt_version": (GEN_AI_PROMPT_VERSION, "text"),
    "endpoint": (INFERMETER_ENDPOINT, "text"),
    "operation": (GEN_AI_OPERATION_NAME, "text"),
    "input_tokens": (GEN_AI_USAGE_INPUT_TOKENS, "count"),
    "output_tokens": (GEN_AI_USAGE_OUTPUT_TOKENS, "count"),
    "cache_read_tokens": (GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, "count"),
    "cache_write_tokens": (GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, "count"),
    "reasoning_tokens": (GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, "count"),
    "ttft": (GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, "seconds"),
    # A custom model server's own timing (vLLM's names, so the collector reads both alike).
    "queue_time": (GEN_AI_LATENCY_TIME_IN_QUEUE, "seconds"),
    "model_time": (GEN_AI_LATENCY_TIME_IN_MODEL_INFERENCE, "seconds"),
    "retry_after": (INFERMETER_RETRY_AFTER, "seconds"),
    "init_duration": (INFERMETER_INIT_DURATION, "seconds"),
    "throttled": (INFERMETER_THROTTLED, "bool"),
    "cold_start": (FAAS_COLDSTART, "bool"),
    "response_id": (sc_quality.GEN_AI_RESPONSE_ID, "text"),
    "retrieved_ids": (sc_quality.INFERMETER_RETRIEVAL_IDS, "ids"),
    "used_ids": (sc_quality.INFERMETER_RETRIEVAL_USED_IDS, "ids"),
    "retrieval_scores": (sc_quality.INFERMETER_RETRIEVAL_SCORES, "scores"),
    "query_fingerprint": (sc_quality.INFERMETER_QUERY_FINGERPRINT, "text"),
    "index_version": (sc_quality.INFERMETER_INDEX_VERSION, "text"),
}
_MAX_RETRIEVED: Final = 1000  # ids or scores kept per span (rank order)


def _ids(value: object) -> tuple[str, ...] | None:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return None
    out = tuple(str(item) for item in value[:_MAX_RETRIEVED] if isinstance(item, str | int))
    return out if len(out) == min(len(value), _MAX_RETRIEVED) else None


def _scores(value: object) -> tuple[float, ...] | None:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return None
    out = tuple(
        float(item)
        for item in value[:_MAX_RETRIEVED]
        if isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item)
    )
    return out if len(out) == min(len(value), _MAX_RETRIEVED) else None


def _clean_attribute(value: object) -> object:
    """A valid OpenTelemetry attribute value, or None (checked here so the SDK never logs
    warnings into the application's logs about values we passed)."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return value
    if isinstance(value, list | tuple) and value:
        kinds = {type(item) for item in value}
        if len(kinds) == 1 and kinds <= {bool, str, int, float}:
            return tuple(value)
    return None


def annotate_call(call: Call, fields: Mapping[str, object]) -> None:
    try:
        for name, value in fields.items():
            if value is not None:
                _annotate_one(call, name, value)
    except Exception:  # noqa: BLE001 - annotate never raises
        LOGGER.debug("infermeter: annotate failed", exc_info=True)


def _annotate_one(call: Call, name: str, value: object) -> None:
    spec = _ANNOTATIONS.get(name)
    if spec is not None:
        _annotate_value(call, name, spec, value)
    elif name == "embeddings":
        _annotate_embeddings(call, value)
    elif name in {"input_messages", "output_messages"}:
        _annotate_messages(call, name, value)
    elif name == "attributes":
        _annotate_attributes(call, value)
    else:
        LOGGER.debug("infermeter: annotate ignored unknown field %r", name)


def _annotate_value(call: Call, name: str, spec: tuple[str, str], value: object) -> None:
    key, kind = spec
    cleaned: object
    if kind == "text":
        cleaned = text(value)
    elif kind == "count":
        cleaned = non_negative_int(value)
    elif kind == "seconds":
        cleaned = seconds(value)
    elif kind == "ids":
        cleaned = _ids(value)
    elif kind == "scores":
        cleaned = _scores(value)
    else:
        cleaned = value if isinstance(value, bool) else None
    if cleaned is None:
        LOGGER.debug("infermeter: annotate ignored %s=%s", name, Shown(value))
        return
    _set(call, key, cleaned)


def _annotate_messages(call: Call, name: str, value: object) -> None:
    settings = call.pipeline.settings
    if not settings.capture_content:
        return
    role = "user" if name == "input_messages" else "assistant"
    messages = normalise_messages(value, role)
    if messages:
        key = GEN_AI_INPUT_MESSAGES if role == "user" else GEN_AI_OUTPUT_MESSAGES
        _set(call, key, messages_json(messages, settings.max_content_chars))


def _annotate_attributes(call: Call, value: object) -> None:
    if not isinstance(value, Mapping):
        LOGGER.debug("infermeter: annotate(attributes=...) needs a mapping")
        return
    for key, raw in value.items():
        attribute = _clean_attribute(raw)
        if isinstance(key, str) and key and attribute is not None:
            _set(call, key, attribute)
        else:
            LOGGER.debug("infermeter: annotate ignored attribute %s", Shown(key))


def _set(call: Call, key: str, value: object) -> None:
    if call.annotated is None:
        call.annotated = {}
    call.annotated[key] = value


def _annotate_embeddings(call: Call, value: object) -> None:
    kind = EMBEDDING_KIND_QUERY
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        value, kind = value
    if kind not in EMBEDDING_KINDS:
        LOGGER.debug("infermeter: annotate ignored embeddings of kind %r", kind)
        return
    attach_embeddings(call, value, kind)


def _embedding_rate(call: Call) -> float:
    rate = call.spec.capture_embeddings
    return call.pipeline.embedding_rate if rate is None else rate


def returns_embeddings(call: Call) -> bool:
    """Whether the return value is read for vectors: for calls of operation
    "embeddings" when capture is on, or for functions decorated with their own
    ``capture_embeddings`` rate. A retriever returning its scores (a list of floats) is
    not an embedding."""
    rate = call.spec.capture_embeddings
    if rate is not None:
        return rate > 0
    if call.pipeline.embedding_rate <= 0:
        return False
    operation = call.start_attributes.get(GEN_AI_OPERATION_NAME)
    if call.annotated is not None:
        operation = call.annotated.get(GEN_AI_OPERATION_NAME, operation)
    return operation == OPERATION_EMBEDDINGS


def attach_embeddings(call: Call, value: object, kind: str) -> None:
    # Imported on first use: it needs the OpenTelemetry SDK, which an application using
    # only the API (its own provider, no configure()) should not pay for at import.
    from infermeter.agent._embeddings import attach_vectors, collect_vectors, trace_sampled

    if call.embedding_sampled is None:
        rate = _embedding_rate(call)
        call.embedding_sampled = (
            rate > 0
            and call.span.is_recording()
            and trace_sampled(call.span.get_span_context().trace_id, rate)
        )
    if not call.embedding_sampled:
        return
    root = call
    while root.parent is not None:
        root = root.parent
    if root.embedded is None:
        root.embedded = {}
    if id(value) in root.embedded:
        return
    root.embedded[id(value)] = value
    settings = call.pipeline.settings
    room = max(settings.max_embeddings_per_span - call.embeddings, 0)
    vectors, beyond = collect_vectors(value, room)
    attached, dropped = attach_vectors(
        call.span,
        vectors,
        kind,
        max_vectors=settings.max_embeddings_per_span,
        max_dims=settings.max_embedding_dims,
        already_attached=call.embeddings,
        timestamp=call.end_ns or call.now(),
    )
    call.embeddings += attached
    call.dropped_embeddings += dropped + beyond
