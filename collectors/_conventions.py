"""Which span attribute of which GenAI / OpenTelemetry convention fills which store column.

Most teams already run some GenAI instrumentation: the official OpenTelemetry
``opentelemetry-instrumentation-openai-v2``, OpenLIT, OpenLLMetry (``traceloop-sdk`` and its
standalone instrumentations), Arize OpenInference, or a web framework's server spans. They
name the same facts differently, and the GenAI semantic conventions renamed several of them
(``gen_ai.usage.prompt_tokens`` became ``gen_ai.usage.input_tokens`` in 1.27,
``gen_ai.system`` became ``gen_ai.provider.name`` in 1.37). This module is the ONE table
saying where each typed column of the ``spans`` table comes from, as plain data, so that the
DuckDB collector (:mod:`infermeter.collectors._flatten`) and any other engine's view over the
same spans (e.g. a ClickHouse view over the OpenTelemetry Collector's ``otel_traces``) read
spans the same way.

Rules every reader of :data:`ATTRIBUTE_MAP` applies:

- ``sources`` are span attribute names, newest convention first: when a span carries several
  of them, the first one present with a value of the right ``type`` wins.
- A value of the wrong type is ignored for the column (it stays, raw, among the span's
  remaining attributes); the next source may still fill the column.
- ``scale`` multiplies the value into the column's unit (seconds → milliseconds, bytes →
  MiB); ``None`` keeps the value as sent; ``offset`` is added to an integer value.
- ``resource=True``: when no span attribute fills the column, the same sources on the
  span's *resource* do (a span overrides its resource).
- Attributes no entry names stay in the JSON ``attributes`` column, untouched.

Facts that are derived rather than copied (the throttle flag from an HTTP 429 or a
rate-limit ``error.type``, TTFT from a first streamed-chunk event, the emitter's own cost)
read the attributes and events named in :data:`SIGNAL_MAP`; the module
:mod:`infermeter.collectors._flatten` documents those rules, and the ClickHouse views
(:mod:`infermeter.collectors._clickhouse_schema`, ``_derived_*``) derive the same facts
from the same names.

Conventions covered (each name below is what the named package writes):

==================== ============================================================
convention           names
==================== ============================================================
GenAI semconv 1.37+  ``gen_ai.provider.name``, ``gen_ai.usage.input_tokens`` …,
                     ``gen_ai.usage.cache_read.input_tokens``,
                     ``gen_ai.response.time_to_first_chunk`` (infermeter's decorator)
GenAI semconv <1.27  ``gen_ai.system``, ``gen_ai.usage.prompt_tokens``,
                     ``gen_ai.usage.completion_tokens``
OpenLIT              ``gen_ai.server.time_to_first_token`` (s, streams), ``gen_ai.request.stream``,
                     ``gen_ai.usage.cost`` (USD, its own price)
OpenLLMetry          ``llm.request.type``, ``llm.is_streaming``,
(traceloop)          ``gen_ai.usage.cache_read_input_tokens``, ``llm.usage.*`` (oldest),
                     ``traceloop.prompt.*``, ``traceloop.association.properties.*``
OpenInference        ``llm.model_name``, ``embedding.model_name``, ``llm.provider``, ``llm.system``,
                     ``llm.token_count.prompt`` / ``completion`` / ``*_details.*``,
                     ``openinference.span.kind``, ``llm.prompt_template.version``
HTTP semconv         ``http.route`` (server spans), ``http.response.status_code``
                     (``http.status_code`` before 1.23)
==================== ============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "ATTRIBUTE_MAP",
    "DEFAULT_TENANT_ATTRIBUTES",
    "RATE_LIMIT_MARKERS",
    "SIGNAL_MAP",
    "AttributeMapping",
    "SignalMapping",
    "ValueType",
]

ValueType = Literal["string", "int", "number", "bool"]


@dataclass(frozen=True, slots=True)
class AttributeMapping:
    """One typed column of ``spans`` and the attributes it is read from (newest first)."""

    column: str
    type: ValueType
    sources: tuple[str, ...]
    scale: float | None = None
    resource: bool = False
    offset: int = 0  # added to an integer value (attempt = 1 + infermeter.retries)


@dataclass(frozen=True, slots=True)
class SignalMapping:
    """Attributes (or span event names) read to derive a fact rather than copied."""

    signal: str
    sources: tuple[str, ...]
    meaning: str


_S = 1000.0  # seconds → milliseconds
_MIB = 1.0 / (1024 * 1024)  # bytes → MiB

ATTRIBUTE_MAP: Final[tuple[AttributeMapping, ...]] = (
    AttributeMapping("tenant", "string", ("tenant.id",), resource=True),
    AttributeMapping(
        "model",
        "string",
        (
            "gen_ai.request.model",
            "llm.request.model",
            "llm.model_name",
            "embedding.model_name",
            # Triton's OpenTelemetry mode names the model on its request and model spans.
            "triton.model_name",
        ),
    ),
    AttributeMapping("response_model", "string", ("gen_ai.response.model", "llm.response.model")),
    AttributeMapping(
        "provider",
        "string",
        ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"),
    ),
    AttributeMapping("prompt_name", "string", ("gen_ai.prompt.name", "traceloop.prompt.key")),
    AttributeMapping(
        "prompt_version",
        "string",
        ("gen_ai.prompt.version", "traceloop.prompt.version", "llm.prompt_template.version"),
    ),
    AttributeMapping("endpoint", "string", ("infermeter.endpoint", "http.route")),
    AttributeMapping(
        "operation",
        "string",
        ("gen_ai.operation.name", "llm.request.type", "openinference.span.kind"),
    ),
    AttributeMapping("error_type", "string", ("error.type",)),
    AttributeMapping("runtime", "string", ("infermeter.runtime",), resource=True),
    AttributeMapping("platform", "string", ("cloud.platform",), resource=True),
    AttributeMapping("cloud_provider", "string", ("cloud.provider",), resource=True),
    AttributeMapping("region", "string", ("cloud.region",), resource=True),
    AttributeMapping("faas_name", "string", ("faas.name",), resource=True),
    AttributeMapping("cold_start", "bool", ("faas.coldstart",)),
    AttributeMapping("init_duration_ms", "number", ("infermeter.init_duration",), scale=_S),
    AttributeMapping(
        "initialization_type", "string", ("infermeter.initialization_type",), resource=True
    ),
    AttributeMapping("memory_mb", "number", ("faas.max_memory",), scale=_MIB, resource=True),
    AttributeMapping(
        "input_tokens",
        "int",
        (
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.usage.prompt_tokens",
            "llm.token_count.prompt",
        ),
    ),
    AttributeMapping(
        "output_tokens",
        "int",
        (
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.usage.completion_tokens",
            "llm.token_count.completion",
        ),
    ),
    AttributeMapping(
        "cache_read_tokens",
        "int",
        (
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
    ),
    AttributeMapping(
        "cache_write_tokens",
        "int",
        (
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        ),
    ),
    AttributeMapping(
        "reasoning_tokens",
        "int",
        (
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.usage.reasoning_tokens",
            "llm.usage.reasoning_tokens",
            "llm.token_count.completion_details.reasoning",
        ),
    ),
    AttributeMapping(
        "ttft_ms",
        "number",
        # vLLM / SGLang server spans: gen_ai.latency.time_to_first_token (s).
        ("gen_ai.response.time_to_first_chunk", "gen_ai.latency.time_to_first_token"),
        scale=_S,
    ),
    AttributeMapping(
        "stream",
        "bool",
        (
            "gen_ai.request.stream",
            "gen_ai.request.is_stream",
            "gen_ai.is_streaming",
            "llm.is_streaming",
        ),
    ),
    AttributeMapping("throttled", "bool", ("infermeter.throttled",)),
    AttributeMapping("retry_after_s", "number", ("infermeter.retry_after",), scale=1.0),
    AttributeMapping("attempt", "int", ("infermeter.retries",), offset=1),
    AttributeMapping("is_entry", "bool", ("infermeter.entry",)),
    # Model servers (vLLM, SGLang; seconds) and the GPUs they run on. vLLM v0 with
    # detailed traces: execute includes forward plus sync and sampling.
    AttributeMapping("queue_ms", "number", ("gen_ai.latency.time_in_queue",), scale=_S),
    AttributeMapping(
        "model_ms",
        "number",
        (
            "gen_ai.latency.time_in_model_inference",
            "gen_ai.latency.time_in_model_execute",
            "gen_ai.latency.time_in_model_forward",
        ),
        scale=_S,
    ),
    AttributeMapping("gpu_type", "string", ("infermeter.gpu.type",), resource=True),
    AttributeMapping("gpu_count", "int", ("infermeter.gpu.count",), resource=True),
)

SIGNAL_MAP: Final[tuple[SignalMapping, ...]] = (
    SignalMapping(
        "http_status",
        ("http.response.status_code", "http.status_code"),
        "429 on any span (client or server) marks the span throttled",
    ),
    SignalMapping(
        "retry_after",
        ("http.response.header.retry-after", "http.response.header.retry_after"),
        "seconds (first value of the captured header) when the span is throttled",
    ),
    SignalMapping(
        "rate_limit_error",
        ("error.type",),
        "a rate-limit class name (any module prefix, or the <class '...'> form) marks "
        "the span throttled",
    ),
    SignalMapping(
        "exception_event",
        ("exception.type",),
        "attribute of span events named 'exception' (OpenInference records errors only "
        "so): a rate-limit class name marks the span throttled",
    ),
    SignalMapping(
        "first_chunk_event",
        (
            "gen_ai.content.completion.chunk",
            "llm.content.completion.chunk",
            "First Token Stream Event",
        ),
        "span EVENT names (OpenLLMetry, its pre-0.47 name, OpenInference): the first "
        "one's time minus the span start is the TTFT, and the span is a stream",
    ),
    SignalMapping(
        "stream_ttft",
        ("gen_ai.server.time_to_first_token",),
        "seconds; the TTFT of a STREAMED span (OpenLIT writes it on every span, where "
        "for an unstreamed call it is the whole response time); kept in attributes",
    ),
    SignalMapping(
        "server_inference_time",
        ("inference_time",),
        "Hugging Face TGI / TEI: a Rust Duration debug string ('1.5ms', '250µs', '2.25s') "
        "is the time in the model (model_ms); without one, none of the fields below is read",
    ),
    SignalMapping(
        "server_queue_time",
        ("queue_time",),
        "Hugging Face TGI / TEI: a Rust Duration debug string, the time queued (queue_ms)",
    ),
    SignalMapping(
        "server_input_tokens",
        ("compute_tokens", "prompt_tokens"),
        "Hugging Face TEI / TGI input token counts (integers or their debug text), in order",
    ),
    SignalMapping(
        "server_output_tokens",
        ("generated_tokens",),
        "Hugging Face TGI output token count (an integer or its debug text)",
    ),
    SignalMapping(
        "server_events",
        ("QUEUE_START", "COMPUTE_START", "COMPUTE_END"),
        "span EVENT names (Triton): QUEUE_START to COMPUTE_START is queue_ms, "
        "COMPUTE_START to COMPUTE_END model_ms (the last event of each name counts)",
    ),
    SignalMapping(
        "emitter_cost_usd",
        ("gen_ai.usage.cost",),
        "the emitter's own price of the call in USD (kept in attributes; prices check "
        "shows the difference to infermeter's)",
    ),
)

# An ``error.type`` whose class name (module prefix and ``<class '...'>`` dropped, lower
# case, underscores removed) contains one of these names a throttle: OpenAI / Anthropic
# ``RateLimitError``, botocore ``ThrottlingException`` / ``TooManyRequestsException``,
# google-api-core ``ResourceExhausted``, ``RateLimitExceeded`` … (as the decorator reads
# exceptions).
RATE_LIMIT_MARKERS: Final[tuple[str, ...]] = (
    "ratelimit",
    "toomanyrequests",
    "throttl",
    "resourceexhausted",
)

# Read, in order, for the tenant when a span (and its resource) carries no ``tenant.id``
# (the setting INFERMETER_TENANT_ATTRIBUTES replaces this list): where OpenLLMetry's
# association properties and OpenInference's ``metadata`` JSON put it. ``user.id`` or
# ``session.id`` name a tenant only in some applications: list them when yours do.
DEFAULT_TENANT_ATTRIBUTES: Final[tuple[str, ...]] = (
    "tenant_id",
    "traceloop.association.properties.tenant_id",
    "traceloop.association.properties.tenant.id",
    "metadata.tenant_id",
    "metadata.tenant",
)
