"""``@observe``, ``span()`` and ``annotate()``: one observed call = one span + metrics.

Never break the host: the user's function is always called outside every telemetry
``try``; its result is returned as the same object and its exception re-raised with a
bare ``raise`` (same object, same traceback). Each telemetry step (``_begin``,
``_Call.finish``, ``_Call.fail``, ``_Call.on_chunk``, ``_Call.annotate``) swallows its own
failures and logs them at debug on the ``infermeter`` logger; if ``_begin`` fails the
function simply runs unobserved.

Callables for ``tenant``, ``model``, ``prompt_version``, ``endpoint`` (and the other string
options) are called with exactly the arguments the observed function received —
``tenant=lambda request, **_: request.headers["x-tenant"]`` — including ``self`` for
methods; for ``span()`` they are called with no arguments. A callable that raises, or
returns None, leaves the attribute out.

Retries: ``infermeter.retries`` counts the *consecutive failed* attempts of the same
observed function immediately before this one under the same parent (the enclosing
observed call, or the enclosing foreign span for outermost calls). A failure is an
exception or a throttled result; a success resets the count, so two independent calls
in one request are not mistaken for a retry.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Final, TypeVar, cast, overload

from infermeter.agent import semconv as sc_quality
from infermeter.agent._clock import VIRTUAL_CLOCK, VirtualClock
from infermeter.agent._content import input_messages, messages_json, normalise_messages
from infermeter.agent._content import output_messages as result_messages
from infermeter.agent._duck import LOGGER, Shown, field, non_negative_int, seconds, text
from infermeter.agent._pipeline import Active, Pipeline, active
from infermeter.agent._recorder import RECORDER, Measurement, record
from infermeter.agent._runtime import (
    COLD_START,
    INIT_PROVISIONED_CONCURRENCY,
    INIT_SNAP_START,
    seconds_since_process_start,
)
from infermeter.agent._throttle import Throttle, throttle_from_exception, throttle_from_result
from infermeter.agent._tokens import Usage, read_response, response_model, stream_usage
from infermeter.agent.semconv import (
    EMBEDDING_KIND_QUERY,
    EMBEDDING_KIND_RESPONSE,
    EMBEDDING_KINDS,
    ERROR_TYPE,
    FAAS_COLDSTART,
    FAAS_INVOCATION_ID,
    FAAS_TRIGGER,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_LATENCY_TIME_IN_MODEL_INFERENCE,
    GEN_AI_LATENCY_TIME_IN_QUEUE,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_PROMPT_NAME,
    GEN_AI_PROMPT_VERSION,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_STREAM,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    INFERMETER_EMBEDDINGS_DROPPED,
    INFERMETER_ENDPOINT,
    INFERMETER_ENTRY,
    INFERMETER_INIT_DURATION,
    INFERMETER_INITIALIZATION_TYPE,
    INFERMETER_RETRIES,
    INFERMETER_RETRY_AFTER,
    INFERMETER_RUNTIME,
    INFERMETER_THROTTLED,
    OPERATION_EMBEDDINGS,
    RUNTIMES,
    TENANT_ID,
)
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

__all__ = ["ObservedSpan", "annotate", "current_span", "observe", "span"]

F = TypeVar("F", bound=Callable[..., Any])

_CURRENT: Final[ContextVar[_Call | None]] = ContextVar("infermeter_observed_call", default=None)

# Values that never carry usage, status or vectors: skip result inspection entirely.
_PLAIN: Final = frozenset({str, bytes, int, float, bool, type(None)})

# Attributes nested observed calls inherit from the enclosing one unless they set them.
_INHERITED: Final = (TENANT_ID, GEN_AI_PROMPT_NAME, GEN_AI_PROMPT_VERSION)

# Outermost calls under a foreign parent span: (parent span id, spec) -> failed attempts.
_ROOT_ATTEMPTS: Final[dict[Any, int]] = {}
_ROOT_ATTEMPTS_LIMIT: Final = 4096


# annotate() friendly names -> (attribute, kind of value).
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


def _qualified_name(cls: type) -> str:
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", None) or cls.__name__
    return f"{module}.{qualname}" if module and module != "builtins" else str(qualname)


def _derive(
    fn: Callable[..., object], args: Sequence[object], kwargs: Mapping[str, object]
) -> str | None:
    try:
        return text(fn(*args, **kwargs))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - a failing attribute callable leaves it out
        LOGGER.debug("infermeter: attribute callable %s failed", Shown(fn), exc_info=True)
        return None


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


def _lambda_trigger(event: Mapping[Any, Any]) -> str:
    if "requestContext" in event or "httpMethod" in event or "routeKey" in event:
        return "http"
    if event.get("source") in {"aws.events", "aws.scheduler"}:
        return "timer"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        source = records[0].get("eventSource") or records[0].get("EventSource")
        if source in {"aws:sqs", "aws:sns", "aws:kinesis"}:
            return "pubsub"
        if source in {"aws:s3", "aws:dynamodb"}:
            return "datasource"
    return "other"


def _lambda_attributes(args: Sequence[object], attributes: dict[str, Any]) -> None:
    """faas.invocation_id from the Lambda context, faas.trigger from the event's shape."""
    for arg in args[:3]:
        if isinstance(arg, Mapping):
            attributes.setdefault(FAAS_TRIGGER, _lambda_trigger(arg))
            continue
        request_id = field(arg, "aws_request_id")
        if isinstance(request_id, str):
            attributes[FAAS_INVOCATION_ID] = request_id


def _cold_start(pipeline: Pipeline, attributes: dict[str, Any]) -> tuple[bool, float | None]:
    if not COLD_START.claim():
        attributes[FAAS_COLDSTART] = False
        return False, None
    init_type = pipeline.runtime.initialization_type
    if init_type:
        attributes[INFERMETER_INITIALIZATION_TYPE] = init_type
    if init_type == INIT_PROVISIONED_CONCURRENCY:
        # INIT ran ahead of time, off the request path; the gap since is idle time.
        attributes[FAAS_COLDSTART] = False
        return False, None
    attributes[FAAS_COLDSTART] = True
    if init_type == INIT_SNAP_START:
        # Restored from a snapshot: the process start predates the restore.
        return True, None
    init = seconds_since_process_start()
    attributes[INFERMETER_INIT_DURATION] = init
    return True, init


def _valid_runtime(runtime: object) -> str | None:
    if runtime is None:
        return None
    if isinstance(runtime, str) and runtime in RUNTIMES:
        return runtime
    LOGGER.warning(
        "infermeter: ignoring runtime=%s (expected one of %s)", Shown(runtime), ", ".join(RUNTIMES)
    )
    return None


def _valid_rate(rate: object) -> float | None:
    if rate is None:
        return None
    value = seconds(rate)
    if value is not None and value <= 1.0:
        return value
    LOGGER.warning("infermeter: ignoring capture_embeddings=%s (expected 0..1)", Shown(rate))
    return None


class _Spec:
    """What one decoration (or one ``span()``) fixed: static attributes and callables."""

    __slots__ = (
        "capture_embeddings",
        "dynamic",
        "kind",
        "model",
        "name",
        "operation",
        "qualname",
        "runtime",
        "static",
        "static_name",
        "templates",
    )

    def __init__(
        self,
        *,
        qualname: str,
        name: str | None,
        options: Mapping[str, object],
        runtime: object,
        capture_embeddings: object,
        stream: bool,
    ) -> None:
        self.qualname = qualname
        self.name = text(name) if name is not None else None
        self.static: dict[str, Any] = {}
        dynamic: list[tuple[str, Callable[..., object]]] = []
        for key, value in options.items():
            if value is None:
                continue
            if callable(value):
                dynamic.append((key, value))
                continue
            cleaned = text(value)
            if cleaned is not None:
                self.static[key] = cleaned
        self.dynamic = tuple(dynamic)
        if stream:
            self.static[GEN_AI_REQUEST_STREAM] = True
        self.operation: str | None = self.static.get(GEN_AI_OPERATION_NAME)
        self.model: str | None = self.static.get(GEN_AI_REQUEST_MODEL)
        dynamic_keys = {key for key, _ in self.dynamic}
        # The span name when no callable can change it (computed once, not per call).
        self.static_name: str | None = None
        if self.name is not None:
            self.static_name = self.name
        elif not dynamic_keys & {GEN_AI_OPERATION_NAME, GEN_AI_REQUEST_MODEL}:
            self.static_name = self.span_name(self.static)
        has_provider = options.get(GEN_AI_PROVIDER_NAME) is not None
        self.kind = SpanKind.CLIENT if has_provider else SpanKind.INTERNAL
        self.runtime = _valid_runtime(runtime)
        self.capture_embeddings = _valid_rate(capture_embeddings)
        # (pipeline, outermost-call attributes, nested-call attributes): what every call
        # starts from, built once per pipeline instead of key by key on every call.
        self.templates: tuple[Pipeline, dict[str, Any], dict[str, Any]] | None = None

    def make_templates(self, pipeline: Pipeline) -> tuple[Pipeline, dict[str, Any], dict[str, Any]]:
        nested = dict(self.static)
        nested[INFERMETER_RUNTIME] = self.runtime or pipeline.runtime_name
        nested[INFERMETER_RETRIES] = 0
        entry = dict(nested)
        entry.update(pipeline.runtime_attributes_for_entry())
        entry[INFERMETER_ENTRY] = True
        entry[FAAS_COLDSTART] = False
        self.templates = (pipeline, entry, nested)
        return self.templates

    def start_attributes(self, pipeline: Pipeline, *, outermost: bool) -> dict[str, Any]:
        """A fresh copy of the attributes every call of this spec starts with."""
        templates = self.templates
        # Rebuilt until the pipeline knows what its provider's resource lacks.
        if (
            templates is None
            or templates[0] is not pipeline
            or pipeline.entry_runtime_attributes is None
        ):
            templates = self.make_templates(pipeline)
        return (templates[1] if outermost else templates[2]).copy()

    def span_name(self, attributes: Mapping[str, Any]) -> str:
        if self.name is not None:
            return self.name
        operation = attributes.get(GEN_AI_OPERATION_NAME)
        model = attributes.get(GEN_AI_REQUEST_MODEL)
        if operation and model:
            return f"{operation} {model}"
        return self.qualname


def _spec(
    *,
    qualname: str,
    name: str | None,
    tenant: object,
    model: object,
    provider: object,
    prompt_name: object,
    prompt_version: object,
    endpoint: object,
    operation: object,
    runtime: object,
    capture_embeddings: object,
    stream: bool,
) -> _Spec:
    options = {
        GEN_AI_OPERATION_NAME: operation,
        GEN_AI_PROVIDER_NAME: provider,
        GEN_AI_REQUEST_MODEL: model,
        TENANT_ID: tenant,
        GEN_AI_PROMPT_NAME: prompt_name,
        GEN_AI_PROMPT_VERSION: prompt_version,
        INFERMETER_ENDPOINT: endpoint,
    }
    return _Spec(
        qualname=qualname,
        name=name,
        options=options,
        runtime=runtime,
        capture_embeddings=capture_embeddings,
        stream=stream,
    )


class _Call:
    """One observed call in flight."""

    __slots__ = (
        "annotated",
        "attempts",
        "clock",
        "cold",
        "context",
        "context_token",
        "current_token",
        "dropped_embeddings",
        "embedded",
        "embedding_sampled",
        "embeddings",
        "end_ns",
        "entry",
        "first_chunk_ns",
        "init",
        "parent",
        "pipeline",
        "result",
        "retry_key",
        "span",
        "spec",
        "start_attributes",
        "start_ns",
        "stream_model",
        "stream_usage",
    )

    def __init__(
        self,
        spec: _Spec,
        pipeline: Pipeline,
        span: Span,
        *,
        start_ns: int,
        attributes: dict[str, Any],
        clock: VirtualClock | None,
    ) -> None:
        self.spec = spec
        self.pipeline = pipeline
        self.span = span
        self.start_ns = start_ns
        self.start_attributes = attributes
        self.clock = clock
        self.entry = False
        self.cold = False
        self.init: float | None = None
        self.parent: _Call | None = None
        self.retry_key: object = None
        self.attempts: dict[Any, int] | None = None
        self.annotated: dict[str, Any] | None = None
        self.context: Context | None = None
        self.context_token: Token[Context] | None = None
        self.current_token: Token[_Call | None] | None = None
        self.first_chunk_ns: int | None = None
        self.stream_usage: Usage | None = None
        self.stream_model: str | None = None
        self.embedding_sampled: bool | None = None
        # Values whose vectors were attached in this call tree, by id (kept on the outermost
        # call, holding the values so an id cannot be reused by a new object meanwhile): a
        # handler returning its nested call's vectors adds no duplicate.
        self.embedded: dict[int, object] | None = None
        self.embeddings = 0
        self.dropped_embeddings = 0
        # Handed to the background thread that ends the span.
        self.result: object = None
        self.end_ns = 0

    # --- context ---------------------------------------------------------------------

    def enter(self) -> None:
        """Make this call's span (and this call) current while user code runs."""
        try:
            if self.context is None:
                self.context = trace.set_span_in_context(self.span)
            self.context_token = otel_context.attach(self.context)
            self.current_token = _CURRENT.set(self)
        except Exception:  # noqa: BLE001 - telemetry must not raise into user code
            LOGGER.debug("infermeter: attaching the span context failed", exc_info=True)

    def exit(self) -> None:
        context_token, current_token = self.context_token, self.current_token
        self.context_token = self.current_token = None
        try:
            if current_token is not None:
                _CURRENT.reset(current_token)
        except Exception:  # noqa: BLE001 - e.g. a token from another context: log, go on
            LOGGER.debug("infermeter: restoring the observed-call context failed", exc_info=True)
        if context_token is not None:
            otel_context.detach(context_token)

    def now(self) -> int:
        return time.time_ns() if self.clock is None else self.clock.ns

    def inherited(self, key: str) -> Any:
        if self.annotated is not None and key in self.annotated:
            return self.annotated[key]
        return self.start_attributes.get(key)

    # --- annotations -----------------------------------------------------------------

    def annotate(self, fields: Mapping[str, object]) -> None:
        try:
            for name, value in fields.items():
                if value is not None:
                    self._annotate_one(name, value)
        except Exception:  # noqa: BLE001 - annotate never raises
            LOGGER.debug("infermeter: annotate failed", exc_info=True)

    def _annotate_one(self, name: str, value: object) -> None:
        spec = _ANNOTATIONS.get(name)
        if spec is not None:
            self._annotate_value(name, spec, value)
        elif name == "embeddings":
            self._annotate_embeddings(value)
        elif name in {"input_messages", "output_messages"}:
            self._annotate_messages(name, value)
        elif name == "attributes":
            self._annotate_attributes(value)
        else:
            LOGGER.debug("infermeter: annotate ignored unknown field %r", name)

    def _annotate_value(self, name: str, spec: tuple[str, str], value: object) -> None:
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
        self._set(key, cleaned)

    def _annotate_messages(self, name: str, value: object) -> None:
        settings = self.pipeline.settings
        if not settings.capture_content:
            return
        role = "user" if name == "input_messages" else "assistant"
        messages = normalise_messages(value, role)
        if messages:
            key = GEN_AI_INPUT_MESSAGES if role == "user" else GEN_AI_OUTPUT_MESSAGES
            self._set(key, messages_json(messages, settings.max_content_chars))

    def _annotate_attributes(self, value: object) -> None:
        if not isinstance(value, Mapping):
            LOGGER.debug("infermeter: annotate(attributes=...) needs a mapping")
            return
        for key, raw in value.items():
            attribute = _clean_attribute(raw)
            if isinstance(key, str) and key and attribute is not None:
                self._set(key, attribute)
            else:
                LOGGER.debug("infermeter: annotate ignored attribute %s", Shown(key))

    def _set(self, key: str, value: object) -> None:
        if self.annotated is None:
            self.annotated = {}
        self.annotated[key] = value

    def _annotate_embeddings(self, value: object) -> None:
        kind = EMBEDDING_KIND_QUERY
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
            value, kind = value
        if kind not in EMBEDDING_KINDS:
            LOGGER.debug("infermeter: annotate ignored embeddings of kind %r", kind)
            return
        self._attach_embeddings(value, kind)

    # --- embeddings ------------------------------------------------------------------

    def _embedding_rate(self) -> float:
        rate = self.spec.capture_embeddings
        return self.pipeline.embedding_rate if rate is None else rate

    def _returns_embeddings(self) -> bool:
        """Whether the return value is read for vectors: for calls of operation
        "embeddings" when capture is on, or for functions decorated with their own
        ``capture_embeddings`` rate. A retriever returning its scores (a list of floats) is
        not an embedding."""
        rate = self.spec.capture_embeddings
        if rate is not None:
            return rate > 0
        if self.pipeline.embedding_rate <= 0:
            return False
        operation = self.start_attributes.get(GEN_AI_OPERATION_NAME)
        if self.annotated is not None:
            operation = self.annotated.get(GEN_AI_OPERATION_NAME, operation)
        return operation == OPERATION_EMBEDDINGS

    def _attach_embeddings(self, value: object, kind: str) -> None:
        # Imported on first use: it needs the OpenTelemetry SDK, which an application using
        # only the API (its own provider, no configure()) should not pay for at import.
        from infermeter.agent._embeddings import attach_vectors, collect_vectors, trace_sampled

        if self.embedding_sampled is None:
            rate = self._embedding_rate()
            self.embedding_sampled = (
                rate > 0
                and self.span.is_recording()
                and trace_sampled(self.span.get_span_context().trace_id, rate)
            )
        if not self.embedding_sampled:
            return
        root = self
        while root.parent is not None:
            root = root.parent
        if root.embedded is None:
            root.embedded = {}
        if id(value) in root.embedded:
            return
        root.embedded[id(value)] = value
        settings = self.pipeline.settings
        room = max(settings.max_embeddings_per_span - self.embeddings, 0)
        vectors, beyond = collect_vectors(value, room)
        attached, dropped = attach_vectors(
            self.span,
            vectors,
            kind,
            max_vectors=settings.max_embeddings_per_span,
            max_dims=settings.max_embedding_dims,
            already_attached=self.embeddings,
            timestamp=self.end_ns or self.now(),
        )
        self.embeddings += attached
        self.dropped_embeddings += dropped + beyond

    # --- streams ---------------------------------------------------------------------

    def on_chunk(self, chunk: object) -> None:
        try:
            if self.first_chunk_ns is None:
                self.first_chunk_ns = self.now()
            if type(chunk) in _PLAIN:
                return
            usage = stream_usage(chunk)
            if usage is not None:
                if self.stream_usage is None:
                    self.stream_usage = usage
                else:
                    self.stream_usage.merge(usage)
            if self.stream_model is None:
                self.stream_model = response_model(chunk)
        except Exception:  # noqa: BLE001 - telemetry must not raise into user code
            LOGGER.debug("infermeter: reading a stream chunk failed", exc_info=True)

    # --- end of the call -------------------------------------------------------------

    def finish(self, result: object) -> None:
        """The call returned ``result`` (for streams: ended normally).

        Only what the caller's thread depends on happens here: restoring the context and
        counting the attempt (the next call's retry count reads it). Reading the result,
        the final attributes, ending the span and the metrics run on the background
        thread — unless the span goes to the application's own provider, whose
        ``force_flush()`` cannot know about our queue (the providers infermeter builds
        drain it first).
        """
        end_ns = time.time_ns() if self.clock is None else self.clock.ns
        self.exit()
        try:
            self.end_ns = end_ns
            annotated = self.annotated
            failed = annotated is not None and annotated.get(INFERMETER_THROTTLED) is True
            if not failed and type(result) not in _PLAIN and throttle_from_result(result):
                # An HTTP 429 is a failed attempt unless it carries usage (then it was served).
                failed = read_response(result)[0] is None
            self._count_attempt(failed)
            if type(result) not in _PLAIN and self._returns_embeddings():
                # Vectors are copied now: the caller may reuse its list after the call.
                self._attach_embeddings(result, EMBEDDING_KIND_RESPONSE)
            pipeline = self.pipeline
            if pipeline.tracer_provider is not None or not self.span.is_recording():
                self.result = result
                RECORDER.defer(self._complete_later)
            else:
                self._complete(result, background=False)
            if self.entry and pipeline.flush_on_return:
                pipeline.flush(pipeline.settings.flush_timeout)
        except Exception:  # noqa: BLE001 - telemetry must not raise into user code
            LOGGER.debug("infermeter: finishing a span failed", exc_info=True)

    def _complete_later(self) -> None:
        result, self.result = self.result, None
        if isinstance(result, BaseException):
            self._fail_complete(result, background=True)
        else:
            self._complete(result, background=True)

    def _complete(self, result: object, *, background: bool) -> None:
        """Read the result, set the final attributes, end the span, record metrics."""
        final: dict[str, Any] = {}
        throttle = self._read_result(result, final)
        if result is not None and self.pipeline.capture_content:
            messages = result_messages(result)
            if messages:
                final[GEN_AI_OUTPUT_MESSAGES] = messages_json(
                    messages, self.pipeline.settings.max_content_chars
                )
        error_type = None
        if throttle is not None:
            error_type = "429"
            final[ERROR_TYPE] = error_type
            self._mark_throttle(final, throttle)
            self.span.set_status(Status(StatusCode.ERROR, "throttled (HTTP 429)"))
        self._end(final, error_type, now=background)

    def _read_result(self, result: object, final: dict[str, Any]) -> Throttle | None:
        """Usage, response model and throttle of a return value (streams: what
        the chunks carried)."""
        usage = self.stream_usage
        model = self.stream_model
        throttle = None
        if type(result) not in _PLAIN:
            returned, returned_model = read_response(result)
            if usage is None:
                usage = returned
            if model is None:
                model = returned_model
            if returned is None:
                # A response carrying token usage was served, not throttled.
                throttle = throttle_from_result(result)
        if usage is not None:
            usage.into(final)
        if model is not None:
            final[GEN_AI_RESPONSE_MODEL] = model
        return throttle

    def closed(self) -> None:
        """A stream the consumer closed early (``break``, ``aclose()``): a normal end."""
        self.finish(None)

    def fail(self, exc: BaseException) -> None:
        """The call raised ``exc``: a failed attempt; the span is ended as in ``finish``."""
        end_ns = time.time_ns() if self.clock is None else self.clock.ns
        self.exit()
        try:
            self.end_ns = end_ns
            self._count_attempt(True)
            pipeline = self.pipeline
            if pipeline.tracer_provider is not None or not self.span.is_recording():
                self.result = exc
                RECORDER.defer(self._complete_later)
            else:
                self._fail_complete(exc, background=False)
            if self.entry and pipeline.flush_on_return:
                pipeline.flush(pipeline.settings.flush_timeout)
        except Exception:  # noqa: BLE001 - telemetry must not raise into user code
            LOGGER.debug("infermeter: recording a failure failed", exc_info=True)

    def _fail_complete(self, exc: BaseException, *, background: bool) -> None:
        error_type = _qualified_name(type(exc))
        final: dict[str, Any] = {ERROR_TYPE: error_type}
        throttle = throttle_from_exception(exc)
        if throttle is not None:
            self._mark_throttle(final, throttle)
        self._record_exception(exc, error_type)
        self._end(final, error_type, now=background)

    def _record_exception(self, exc: BaseException, error_type: str) -> None:
        try:
            description = f"{type(exc).__name__}: {exc}"
        except Exception:  # noqa: BLE001 - an exception whose __str__ raises
            description = type(exc).__name__
        self.span.set_status(Status(StatusCode.ERROR, description))
        try:
            self.span.record_exception(exc, escaped=True)
        except Exception:  # noqa: BLE001 - __str__/__repr__ that raise break tracebacks
            self.span.add_event(
                "exception", {"exception.type": error_type, "exception.message": "<unprintable>"}
            )

    def _mark_throttle(self, final: dict[str, Any], throttle: Throttle) -> None:
        final[INFERMETER_THROTTLED] = True
        if throttle.retry_after is not None:
            final[INFERMETER_RETRY_AFTER] = throttle.retry_after

    def _end(self, final: dict[str, Any], error_type: str | None, *, now: bool) -> None:
        """Set the final attributes, end the span at ``end_ns``, record metrics (``now``:
        on this thread, else queued)."""
        span = self.span
        if self.first_chunk_ns is not None:
            final[GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (self.first_chunk_ns - self.start_ns) / 1e9
        if self.dropped_embeddings:
            final[INFERMETER_EMBEDDINGS_DROPPED] = self.dropped_embeddings
        annotated = self.annotated
        if annotated:
            final.update(annotated)
            if self.spec.name is None:
                name = self.spec.span_name({**self.start_attributes, **annotated})
                if name != self.spec.span_name(self.start_attributes):
                    span.update_name(name)
        if final:
            span.set_attributes(final)
        span.end(end_time=self.end_ns)
        self._submit_metrics(final, error_type, self.end_ns, now)

    def _count_attempt(self, failed: bool) -> None:
        parent = self.parent
        key = self.retry_key
        table: dict[Any, int] | None
        if parent is not None:
            table = parent.attempts
            if table is None:
                if not failed:
                    return
                table = parent.attempts = {}
        else:
            table = _ROOT_ATTEMPTS
            if not failed and not table:
                return
            if key is None:
                # Outermost call: attempts are counted per foreign parent span (SDK spans
                # know their parent; API-only spans are not tracked).
                parent_context = getattr(self.span, "parent", None)
                if parent_context is None or not parent_context.is_valid:
                    return
                key = (parent_context.span_id, self.spec)
        if failed:
            if len(table) >= _ROOT_ATTEMPTS_LIMIT:
                table.clear()
            table[key] = table.get(key, 0) + 1
        else:
            table.pop(key, None)

    def _submit_metrics(
        self, final: dict[str, Any], error_type: str | None, end_ns: int, now: bool
    ) -> None:
        if not self.pipeline.records_metrics:
            return
        start = self.start_attributes
        cold = final.get(FAAS_COLDSTART, self.cold if self.entry else False) is True
        init = final.get(INFERMETER_INIT_DURATION, self.init) if cold else None
        operation = final.get(GEN_AI_OPERATION_NAME, start.get(GEN_AI_OPERATION_NAME))
        if operation is None and not cold:
            return
        provider = final.get(GEN_AI_PROVIDER_NAME, start.get(GEN_AI_PROVIDER_NAME))
        model = final.get(GEN_AI_REQUEST_MODEL, start.get(GEN_AI_REQUEST_MODEL))
        attributes = _metric_labels(
            start[INFERMETER_RUNTIME], operation, provider, model, error_type
        )
        duration = input_tokens = output_tokens = ttft = None
        if operation is not None:
            duration = max((end_ns - self.start_ns) / 1e9, 0.0)
            input_tokens = final.get(GEN_AI_USAGE_INPUT_TOKENS)
            output_tokens = final.get(GEN_AI_USAGE_OUTPUT_TOKENS)
            ttft = final.get(GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        measurement: Measurement = (
            self.pipeline.instruments,
            attributes,
            duration,
            input_tokens,
            output_tokens,
            ttft,
            cold,
            init,
        )
        if now:
            record(measurement)
        else:
            RECORDER.submit(measurement)


class _NullCall:
    """The hooks of an unobserved call: nothing to do."""

    __slots__ = ()

    def enter(self) -> None:
        return None

    def exit(self) -> None:
        return None

    def on_chunk(self, chunk: object) -> None:
        return None

    def finish(self, result: object) -> None:
        return None

    def fail(self, exc: BaseException) -> None:
        return None

    def closed(self) -> None:
        return None


_NULL_CALL: Final = _NullCall()


def _entry(
    pipeline: Pipeline, spec: _Spec, args: Sequence[object], attributes: dict[str, Any]
) -> tuple[bool, float | None, object, int]:
    """The rarer parts of an outermost call (its template already says entry, not cold,
    no retries): the cold start, Lambda's invocation id and trigger, retries under a
    foreign parent. Returns (cold, init, retry key, retries)."""
    cold, init = False, None
    if COLD_START.pending:
        cold, init = _cold_start(pipeline, attributes)
    if pipeline.is_lambda:
        _lambda_attributes(args, attributes)
    if not _ROOT_ATTEMPTS:
        # No outermost call failed lately: nothing to count; the key is found on failure.
        return cold, init, None, 0
    foreign = trace.get_current_span().get_span_context()
    if not foreign.is_valid:
        return cold, init, None, 0
    key = (foreign.span_id, spec)
    return cold, init, key, _ROOT_ATTEMPTS.get(key, 0)


def _nested(parent: _Call, spec: _Spec, attributes: dict[str, Any]) -> int:
    """Inherit tenant and prompt from the enclosing call; returns the retries so far."""
    for key in _INHERITED:
        if key not in attributes:
            value = parent.inherited(key)
            if value is not None:
                attributes[key] = value
    attempts = parent.attempts
    return attempts.get(spec, 0) if attempts else 0


# Metric label sets, shared between calls (the recorder never mutates them): building the
# dict per call cost more than looking it up. Bounded: callables can make models dynamic.
_LABELS: Final[dict[tuple[Any, ...], dict[str, Any]]] = {}
_LABELS_LIMIT: Final = 1024


def _metric_labels(
    runtime: Any, operation: Any, provider: Any, model: Any, error_type: str | None
) -> dict[str, Any]:
    key = (runtime, operation, provider, model, error_type)
    labels = _LABELS.get(key)
    if labels is None:
        labels = {INFERMETER_RUNTIME: runtime}
        if operation is not None:
            labels[GEN_AI_OPERATION_NAME] = operation
            if provider is not None:
                labels[GEN_AI_PROVIDER_NAME] = provider
            if model is not None:
                labels[GEN_AI_REQUEST_MODEL] = model
            if error_type is not None:
                labels[ERROR_TYPE] = error_type
        if len(_LABELS) >= _LABELS_LIMIT:
            _LABELS.clear()
        _LABELS[key] = labels
    return labels


def _capture_input(
    pipeline: Pipeline,
    args: Sequence[object],
    kwargs: Mapping[str, object],
    attributes: dict[str, Any],
) -> None:
    messages = input_messages(args, kwargs)
    if messages:
        attributes[GEN_AI_INPUT_MESSAGES] = messages_json(
            messages, pipeline.settings.max_content_chars
        )


def _begin(
    spec: _Spec, args: Sequence[object], kwargs: Mapping[str, object], attach: bool
) -> _Call | None:
    """Start the span of one call; None when telemetry is off or failed (run unobserved)."""
    try:
        pipeline = Active.current or active()
        if not pipeline.enabled:
            return None
        parent = _CURRENT.get()
        attributes = spec.start_attributes(pipeline, outermost=parent is None)
        for key, fn in spec.dynamic:
            value = _derive(fn, args, kwargs)
            if value is not None:
                attributes[key] = value
        retry_key: object = spec
        retries = 0
        cold = False
        init = None
        if parent is None:
            retry_key = None
            if COLD_START.pending or pipeline.is_lambda or _ROOT_ATTEMPTS:
                cold, init, retry_key, retries = _entry(pipeline, spec, args, attributes)
        else:
            retries = _nested(parent, spec, attributes)
        if retries:
            attributes[INFERMETER_RETRIES] = retries
        if pipeline.capture_content:
            _capture_input(pipeline, args, kwargs, attributes)
        clock = VIRTUAL_CLOCK.get()
        start_ns = time.time_ns() if clock is None else clock.ns
        name = spec.static_name
        if name is None:
            name = spec.span_name(attributes)
        span = pipeline.tracer.start_span(
            name, kind=spec.kind, attributes=attributes, start_time=start_ns
        )
        call = _Call(spec, pipeline, span, start_ns=start_ns, attributes=attributes, clock=clock)
        call.parent = parent
        call.entry = parent is None
        call.cold = cold
        call.init = init
        call.retry_key = retry_key
    except Exception:  # noqa: BLE001 - telemetry must not raise into user code
        LOGGER.debug("infermeter: starting a span failed; running unobserved", exc_info=True)
        return None
    if attach:
        call.enter()
    return call


def _wrap_function(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    def observed(*args: Any, **kwargs: Any) -> Any:
        call = _begin(spec, args, kwargs, True)
        if call is None:
            return func(*args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        call.finish(result)
        return result

    return observed


def _wrap_coroutine(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    async def observed(*args: Any, **kwargs: Any) -> Any:
        call = _begin(spec, args, kwargs, True)
        if call is None:
            return await func(*args, **kwargs)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        call.finish(result)
        return result

    return observed


def _wrap_generator(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    def observed(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        # Runs at the first next(): the span covers the stream, not its creation.
        call = _begin(spec, args, kwargs, False)
        if call is None:
            return (yield from func(*args, **kwargs))
        call.enter()
        try:
            inner = func(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        call.exit()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            call.enter()
            try:
                chunk = inner.send(sent) if thrown is None else inner.throw(thrown)
            except StopIteration as stop:
                call.finish(stop.value)
                return stop.value
            except BaseException as exc:
                call.fail(exc)
                raise
            call.exit()
            call.on_chunk(chunk)
            sent = thrown = None
            try:
                sent = yield chunk
            except GeneratorExit:
                call.enter()
                try:
                    inner.close()
                except BaseException as exc:
                    call.fail(exc)
                    raise
                call.closed()
                raise
            except BaseException as exc:  # noqa: BLE001 - forwarded into the wrapped stream
                thrown = exc

    return observed


def _wrap_async_generator(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    async def observed(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        # Unobserved (telemetry off or failed): the same delegation loop with no-op hooks,
        # so asend()/athrow() still reach the wrapped generator.
        call: _Call | _NullCall = _begin(spec, args, kwargs, False) or _NULL_CALL
        call.enter()
        try:
            inner = func(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        call.exit()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            call.enter()
            try:
                if thrown is None:
                    chunk = await inner.asend(sent)
                else:
                    chunk = await inner.athrow(thrown)
            except StopAsyncIteration:
                call.finish(None)
                return
            except BaseException as exc:
                call.fail(exc)
                raise
            call.exit()
            call.on_chunk(chunk)
            sent = thrown = None
            try:
                sent = yield chunk
            except GeneratorExit:
                call.enter()
                try:
                    await inner.aclose()
                except BaseException as exc:
                    call.fail(exc)
                    raise
                call.closed()
                raise
            except BaseException as exc:  # noqa: BLE001 - forwarded into the wrapped stream
                thrown = exc

    return observed


def _decorate(func: Any, options: dict[str, Any]) -> Any:
    # @observe above @classmethod/@staticmethod: wrap the function inside.
    if isinstance(func, classmethod | staticmethod):
        return type(func)(_decorate(func.__func__, options))
    if not callable(func):
        LOGGER.warning("infermeter: @observe needs a callable, got %s; left as is", Shown(func))
        return func
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if not isinstance(qualname, str):
        qualname = type(func).__qualname__
    if inspect.isasyncgenfunction(func):
        return _wrap_async_generator(func, _spec(qualname=qualname, stream=True, **options))
    if inspect.isgeneratorfunction(func):
        return _wrap_generator(func, _spec(qualname=qualname, stream=True, **options))
    spec = _spec(qualname=qualname, stream=False, **options)
    call_method = getattr(func, "__call__", None)  # noqa: B004 - async callable objects
    if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call_method):
        return _wrap_coroutine(func, spec)
    return _wrap_function(func, spec)


@overload
def observe(func: F, /) -> F: ...


@overload
def observe(
    *,
    name: str | None = None,
    tenant: str | Callable[..., object] | None = None,
    model: str | Callable[..., object] | None = None,
    provider: str | Callable[..., object] | None = None,
    prompt_name: str | Callable[..., object] | None = None,
    prompt_version: str | Callable[..., object] | None = None,
    endpoint: str | Callable[..., object] | None = None,
    operation: str | Callable[..., object] | None = None,
    runtime: str | None = None,
    capture_embeddings: float | None = None,
) -> Callable[[F], F]: ...


def observe(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    tenant: str | Callable[..., object] | None = None,
    model: str | Callable[..., object] | None = None,
    provider: str | Callable[..., object] | None = None,
    prompt_name: str | Callable[..., object] | None = None,
    prompt_version: str | Callable[..., object] | None = None,
    endpoint: str | Callable[..., object] | None = None,
    operation: str | Callable[..., object] | None = None,
    runtime: str | None = None,
    capture_embeddings: float | None = None,
) -> Any:
    """Observe every call of a function: one span, GenAI and FaaS metrics.

    Works as ``@observe`` and ``@observe(...)`` on functions, methods, coroutines,
    generators and async generators (streams: the span ends when the stream is exhausted,
    closed or fails, and the time to first chunk is recorded). String options may be
    callables receiving the call's arguments. ``capture_embeddings`` is the share (0..1) of
    traces whose returned or annotated embedding vectors are attached.
    """
    options: dict[str, Any] = {
        "name": name,
        "tenant": tenant,
        "model": model,
        "provider": provider,
        "prompt_name": prompt_name,
        "prompt_version": prompt_version,
        "endpoint": endpoint,
        "operation": operation,
        "runtime": runtime,
        "capture_embeddings": capture_embeddings,
    }
    if func is not None:
        return _decorate(func, options)

    def decorator(inner: F) -> F:
        return cast(F, _decorate(inner, options))

    return decorator


class ObservedSpan:
    """A span around a block that is not a function (``with`` or ``async with``).

    Single-use like an OpenTelemetry span; ``annotate`` sets attributes,
    ``record_response`` hands over a response whose usage, model, throttle status and
    embeddings are read when the block ends (as for a decorated function's return value).
    """

    __slots__ = ("_call", "_response", "_spec")

    def __init__(self, spec: _Spec) -> None:
        self._spec = spec
        self._call: _Call | None = None
        self._response: object = None

    def __enter__(self) -> ObservedSpan:
        self._call = _begin(self._spec, (), {}, True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        call, self._call = self._call, None
        if call is None:
            return
        if exc is None:
            call.finish(self._response)
        else:
            call.fail(exc)

    async def __aenter__(self) -> ObservedSpan:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def annotate(self, **fields: object) -> None:
        """Like ``infermeter.annotate`` but for this span, wherever it is called from."""
        if self._call is not None:
            self._call.annotate(fields)

    def record_response(self, response: object) -> None:
        self._response = response

    @property
    def otel_span(self) -> Span:
        """The underlying OpenTelemetry span (a non-recording one outside the block)."""
        return self._call.span if self._call is not None else INVALID_SPAN


def span(
    name: str,
    *,
    tenant: str | Callable[[], object] | None = None,
    model: str | Callable[[], object] | None = None,
    provider: str | Callable[[], object] | None = None,
    prompt_name: str | Callable[[], object] | None = None,
    prompt_version: str | Callable[[], object] | None = None,
    endpoint: str | Callable[[], object] | None = None,
    operation: str | Callable[[], object] | None = None,
    runtime: str | None = None,
    capture_embeddings: float | None = None,
) -> ObservedSpan:
    """An observed span for a block: ``with infermeter.span("retrieve", operation=...) as s``.

    Same options as ``observe`` (callables are called with no arguments)."""
    spec = _spec(
        qualname=name,
        name=name,
        tenant=tenant,
        model=model,
        provider=provider,
        prompt_name=prompt_name,
        prompt_version=prompt_version,
        endpoint=endpoint,
        operation=operation,
        runtime=runtime,
        capture_embeddings=capture_embeddings,
        stream=False,
    )
    return ObservedSpan(spec)


def annotate(
    *,
    tenant: str | None = None,
    model: str | None = None,
    response_model: str | None = None,
    provider: str | None = None,
    prompt_name: str | None = None,
    prompt_version: str | None = None,
    endpoint: str | None = None,
    operation: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    ttft: float | None = None,
    throttled: bool | None = None,
    retry_after: float | None = None,
    cold_start: bool | None = None,
    init_duration: float | None = None,
    embeddings: object = None,
    input_messages: object = None,
    output_messages: object = None,
    attributes: Mapping[str, object] | None = None,
    response_id: str | None = None,
    retrieved_ids: Sequence[str] | None = None,
    used_ids: Sequence[str] | None = None,
    retrieval_scores: Sequence[float] | None = None,
    query_fingerprint: str | None = None,
    index_version: str | None = None,
    **unknown: object,
) -> None:
    """Set or override attributes of the current observed call's span by friendly name.

    Values set here win over those read from the return value. Outside an observed call
    it does nothing; invalid values and unknown names are ignored (debug log), never raised.
    ``embeddings`` takes vectors or ``(vectors, kind)`` with kind query|document|response
    (default query); ``input_messages``/``output_messages`` are kept only when content
    capture is on; ``attributes`` sets raw OpenTelemetry attributes.
    Retrieval: ``retrieved_ids`` (rank order), ``used_ids`` (the ones the answer used or
    cited: a hit), ``retrieval_scores``, ``query_fingerprint`` (compares the top-k of one
    query across versions), ``index_version``; ``response_id`` is ``gen_ai.response.id``.
    """
    call = _CURRENT.get()
    if call is None:
        LOGGER.debug("infermeter: annotate() outside an observed call; ignored")
        return
    fields = {
        "tenant": tenant,
        "model": model,
        "response_model": response_model,
        "provider": provider,
        "prompt_name": prompt_name,
        "prompt_version": prompt_version,
        "endpoint": endpoint,
        "operation": operation,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
        "reasoning_tokens": reasoning_tokens,
        "ttft": ttft,
        "throttled": throttled,
        "retry_after": retry_after,
        "cold_start": cold_start,
        "init_duration": init_duration,
        "embeddings": embeddings,
        "input_messages": input_messages,
        "output_messages": output_messages,
        "attributes": attributes,
        "response_id": response_id,
        "retrieved_ids": retrieved_ids,
        "used_ids": used_ids,
        "retrieval_scores": retrieval_scores,
        "query_fingerprint": query_fingerprint,
        "index_version": index_version,
        **unknown,
    }
    call.annotate(fields)


def current_span() -> Span:
    """The OpenTelemetry span of the current observed call (INVALID_SPAN outside one)."""
    call = _CURRENT.get()
    return call.span if call is not None else INVALID_SPAN
