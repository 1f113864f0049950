"""One observed call in flight: its context, and its end (mostly on the background thread)."""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from typing import Any, Final

from infermeter.agent._annotate import attach_embeddings, returns_embeddings
from infermeter.agent._clock import VirtualClock
from infermeter.agent._content import messages_json
from infermeter.agent._content import output_messages as result_messages
from infermeter.agent._duck import LOGGER
from infermeter.agent._pipeline import Pipeline
from infermeter.agent._recorder import RECORDER, Measurement, record
from infermeter.agent._spec import Spec
from infermeter.agent._throttle import Throttle, throttle_from_exception, throttle_from_result
from infermeter.agent._tokens import Usage, read_response, response_model, stream_usage
from infermeter.agent.semconv import (
    EMBEDDING_KIND_RESPONSE,
    ERROR_TYPE,
    FAAS_COLDSTART,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    INFERMETER_EMBEDDINGS_DROPPED,
    INFERMETER_INIT_DURATION,
    INFERMETER_RETRY_AFTER,
    INFERMETER_RUNTIME,
    INFERMETER_THROTTLED,
)
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

__all__ = ["CURRENT", "NULL_CALL", "ROOT_ATTEMPTS", "Call", "NullCall"]

CURRENT: Final[ContextVar[Call | None]] = ContextVar("infermeter_observed_call", default=None)


# Values that never carry usage, status or vectors: skip result inspection entirely.
_PLAIN: Final = frozenset({str, bytes, int, float, bool, type(None)})


# Outermost calls under a foreign parent span: (parent span id, spec) -> failed attempts.
ROOT_ATTEMPTS: Final[dict[Any, int]] = {}
_ROOT_ATTEMPTS_LIMIT: Final = 4096


# annotate() friendly names -> (attribute, kind of value).
def _qualified_name(cls: type) -> str:
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", None) or cls.__name__
    return f"{module}.{qualname}" if module and module != "builtins" else str(qualname)


class Call:
    """One observed call in flight.

    No ``__slots__``: the fields most calls never touch (streams, embeddings,
    annotations, retries below this call) are class-level defaults, so starting a call
    stores only what every call has (measured: ~0.3 µs less per call than 25 slots)."""

    # Set by annotate(); read when the call ends.
    annotated: dict[str, Any] | None = None
    # Failed attempts of nested calls, by spec (see _count_attempt).
    attempts: dict[Any, int] | None = None
    context: Context | None = None
    # False when the span already is the current one (the API's no-op tracer hands back
    # the current span): attaching it again would change nothing, at ~1 µs.
    attach_context = True
    context_token: Token[Context] | None = None
    current_token: Token[Call | None] | None = None
    first_chunk_ns: int | None = None
    stream_usage: Usage | None = None
    stream_model: str | None = None
    embedding_sampled: bool | None = None
    # Values whose vectors were attached in this call tree, by id (kept on the outermost
    # call, holding the values so an id cannot be reused by a new object meanwhile): a
    # handler returning its nested call's vectors adds no duplicate.
    embedded: dict[int, object] | None = None
    embeddings = 0
    dropped_embeddings = 0
    # Handed to the background thread that ends the span.
    result: object = None
    end_ns = 0

    def __init__(  # noqa: PLR0917 - positional: built once per call, on the hot path
        self,
        spec: Spec,
        pipeline: Pipeline,
        span: Span,
        start_ns: int,
        attributes: dict[str, Any],
        clock: VirtualClock | None,
        parent: Call | None,
        cold: bool,
        init: float | None,
        retry_key: object,
    ) -> None:
        self.spec = spec
        self.pipeline = pipeline
        self.span = span
        self.start_ns = start_ns
        self.start_attributes = attributes
        self.clock = clock
        self.parent = parent
        self.entry = parent is None
        self.cold = cold
        self.init = init
        self.retry_key = retry_key

    # --- context ---------------------------------------------------------------------

    def enter(self) -> None:
        """Make this call's span (and this call) current while user code runs."""
        try:
            if self.attach_context:
                if self.context is None:
                    self.context = trace.set_span_in_context(self.span)
                self.context_token = otel_context.attach(self.context)
            self.current_token = CURRENT.set(self)
        except Exception:  # noqa: BLE001 - telemetry must not raise into user code
            LOGGER.debug("infermeter: attaching the span context failed", exc_info=True)

    def exit(self) -> None:
        context_token, current_token = self.context_token, self.current_token
        self.context_token = self.current_token = None
        try:
            if current_token is not None:
                CURRENT.reset(current_token)
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
            pipeline = self.pipeline
            # Attempts only feed the retry count of later spans of the same trace, which
            # are not recorded either when this one is not (same sampling decision).
            recording = self.span.is_recording()
            if recording:
                annotated = self.annotated
                failed = annotated is not None and annotated.get(INFERMETER_THROTTLED) is True
                if type(result) not in _PLAIN:
                    if not failed and throttle_from_result(result):
                        # A 429 is a failed attempt unless it carries usage (it was served).
                        failed = read_response(result)[0] is None
                    if (
                        pipeline.embedding_rate > 0 or self.spec.capture_embeddings is not None
                    ) and returns_embeddings(self):
                        # Vectors are copied now: the caller may reuse its list afterwards.
                        attach_embeddings(self, result, EMBEDDING_KIND_RESPONSE)
                self._count_attempt(failed)
            if recording and pipeline.tracer_provider is None:
                self._complete(result, background=False)
            else:
                self.result = result
                RECORDER.defer(self._complete_later)
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
            pipeline = self.pipeline
            recording = self.span.is_recording()
            if recording:
                self._count_attempt(True)
            if recording and pipeline.tracer_provider is None:
                self._fail_complete(exc, background=False)
            else:
                self.result = exc
                RECORDER.defer(self._complete_later)
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
            table = ROOT_ATTEMPTS
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


class NullCall:
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


NULL_CALL: Final = NullCall()


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
