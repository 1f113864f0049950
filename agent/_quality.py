"""``evaluate()`` and ``feedback()``: GenAI evaluation results, the OpenTelemetry way.

Both emit the ``gen_ai.evaluation.result`` event of the GenAI semantic conventions
(``gen_ai.evaluation.name`` required; ``score.value`` / ``score.label`` when given;
``explanation``; ``gen_ai.response.id`` when the span is not known).

Where the event goes:

- inside an observed call (or with ``span=`` a span still open), as a *span event* on
  that span — it travels with the span, nothing else to send;
- otherwise (the span has ended, or only a trace id / response id is known — a nightly
  eval job, a thumbs-up from the web tier minutes later) as an OTLP *log record* with
  ``event_name`` set and the evaluated span's trace/span id, which is where
  OpenTelemetry is moving events. The collector stores both in ``evaluations``.

Log records go through the OpenTelemetry logs SDK: the application's global
``LoggerProvider`` when it installed one, else one built here on first use with a
``BatchLogRecordProcessor`` and the OTLP/HTTP log exporter to ``logs_endpoint`` (same
headers and resource settings as spans). Export happens on the processor's thread; the
provider flushes at exit and with ``infermeter.agent.force_flush()``.

Nothing here raises into the caller: a bad argument is logged at debug and dropped.
"""

from __future__ import annotations

import math
import re
import threading
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent import semconv as sc
from infermeter.agent._duck import LOGGER
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags

if TYPE_CHECKING:
    from opentelemetry._logs import Logger

__all__ = ["evaluate", "feedback", "flush_logs", "restore_logs", "swap_logs"]

_TRACE_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID: Final = re.compile(r"^[0-9a-f]{16}$")
_MAX_TEXT: Final = 4096  # characters of an explanation or comment that are kept
_SCOPE: Final = "infermeter.quality"


class _Logs:
    lock = threading.Lock()
    logger: Logger | None = None
    provider: Any = None  # the LoggerProvider built here (None when using the global one)
    # The telemetry pipeline the logger was built for: a new configure() (or a test's
    # pipeline) gets a logger exporting where its spans go.
    owner: object = None
    pinned: bool = False  # set by swap_logs (testing.capture): never rebuilt


def _global_logger_provider() -> Any:
    from opentelemetry._logs import get_logger_provider

    provider = get_logger_provider()
    # The API's placeholders until an application installs an SDK provider.
    if type(provider).__name__ in {"ProxyLoggerProvider", "NoOpLoggerProvider"}:
        return None
    return provider


def _current(pipeline: object) -> Logger | None:
    if _Logs.pinned or _Logs.owner is pipeline:
        return _Logs.logger
    return None


def _logger() -> Logger | None:
    from infermeter.agent._pipeline import active

    pipeline = active()
    found = _current(pipeline)
    if found is not None:
        return found
    with _Logs.lock:
        found = _current(pipeline)  # another thread may have built it meanwhile
        if found is not None:
            return found
        if not pipeline.enabled or pipeline.settings.sdk_disabled:
            return None
        provider = _global_logger_provider()
        if provider is None:
            # The provider of an earlier pipeline is left to flush at exit (its own hook).
            provider = _build_provider(pipeline)
            _Logs.provider = provider
        logger: Logger = provider.get_logger(_SCOPE)
        _Logs.logger, _Logs.owner = logger, pipeline
        return logger


def _build_provider(pipeline: Any) -> Any:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    settings = pipeline.settings
    if pipeline.tracer_provider is not None:
        resource = pipeline.tracer_provider.resource
    else:
        attributes: dict[str, Any] = dict(settings.resource_attributes)
        if settings.service_name:
            attributes[sc.SERVICE_NAME] = settings.service_name
        resource = Resource.create(attributes)
    provider = LoggerProvider(resource=resource)
    if settings.traces_exporter != "none":
        exporter = OTLPLogExporter(
            endpoint=settings.logs_url or None, headers=dict(settings.headers or {})
        )
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return provider


def flush_logs(timeout_s: float = 5.0) -> bool:
    """Export the queued log records of the provider built here (True when none)."""
    provider = _Logs.provider
    if provider is None:
        return True
    return bool(provider.force_flush(timeout_millis=max(int(timeout_s * 1000), 1)))


def swap_logs(provider: Any) -> tuple[Any, ...]:
    """Send evaluations to ``provider`` (a ``LoggerProvider``) until :func:`restore_logs`
    gets the returned state back (``testing.capture``)."""
    with _Logs.lock:
        previous = (_Logs.provider, _Logs.logger, _Logs.owner, _Logs.pinned)
        _Logs.provider = provider
        _Logs.logger = provider.get_logger(_SCOPE)
        _Logs.owner, _Logs.pinned = None, True
        return previous


def restore_logs(state: tuple[Any, ...]) -> None:
    with _Logs.lock:
        _Logs.provider, _Logs.logger, _Logs.owner, _Logs.pinned = state


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value[:_MAX_TEXT]
    return None


def _score(value: object) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _attributes(
    name: str,
    score: object,
    label: object,
    explanation: object,
    response_id: object,
) -> dict[str, Any] | None:
    attributes: dict[str, Any] = {sc.GEN_AI_EVALUATION_NAME: name}
    number = _score(score)
    tag = _text(label)
    if number is None and tag is None:
        LOGGER.debug("infermeter: evaluation %r has neither a score nor a label", name)
        return None
    if number is not None:
        attributes[sc.GEN_AI_EVALUATION_SCORE_VALUE] = number
    if tag is not None:
        attributes[sc.GEN_AI_EVALUATION_SCORE_LABEL] = tag
    why = _text(explanation)
    if why is not None:
        attributes[sc.GEN_AI_EVALUATION_EXPLANATION] = why
    rid = _text(response_id)
    if rid is not None:
        attributes[sc.GEN_AI_RESPONSE_ID] = rid
    return attributes


def _target_span(span: object) -> Span | None:
    if span is None:
        from infermeter.agent._observe import current_span

        found: Span = current_span()
        if not found.get_span_context().is_valid:
            found = trace.get_current_span()
        return found if found.get_span_context().is_valid else None
    if isinstance(span, SpanContext):
        return NonRecordingSpan(span) if span.is_valid else None
    otel = getattr(span, "otel_span", span)  # an ObservedSpan inside its block
    if isinstance(otel, Span) and otel.get_span_context().is_valid:
        return otel
    return None


def _emit_log(attributes: dict[str, Any], span: Span | None) -> None:
    from opentelemetry._logs import SeverityNumber

    logger = _logger()
    if logger is None:
        return
    context = trace.set_span_in_context(span) if span is not None else None
    logger.emit(
        event_name=sc.GEN_AI_EVALUATION_RESULT,
        context=context,
        severity_number=SeverityNumber.INFO,
        attributes=attributes,
    )


def evaluate(
    name: str,
    score: float | None = None,
    label: str | None = None,
    explanation: str | None = None,
    *,
    span: object = None,
    response_id: str | None = None,
) -> None:
    """Record a ``gen_ai.evaluation.result`` for the current observed call, or for
    ``span`` (an OpenTelemetry span or span context, e.g. ``current_span()`` kept from
    the call), or for the response ``response_id``.

    ``score`` is a number (a bool counts as 1/0), ``label`` a low-cardinality word
    (``pass``/``fail``, ``relevant``…); at least one is needed. Never raises.
    """
    try:
        evaluation = _text(name)
        if evaluation is None:
            LOGGER.debug("infermeter: evaluate() needs a name")
            return
        attributes = _attributes(evaluation, score, label, explanation, response_id)
        if attributes is None:
            return
        if span is not None:
            # Observed calls end their spans on the background thread: end those that
            # returned, so a span kept from a finished call reads as ended (a log record).
            from infermeter.agent._recorder import RECORDER

            RECORDER.drain()
        target = _target_span(span)
        if target is None and sc.GEN_AI_RESPONSE_ID not in attributes:
            LOGGER.debug("infermeter: evaluation %r has no span and no response id", evaluation)
            return
        if target is not None and target.is_recording():
            target.add_event(sc.GEN_AI_EVALUATION_RESULT, attributes)
            return
        _emit_log(attributes, target)
    except Exception:  # noqa: BLE001 - evaluation telemetry never raises into the caller
        LOGGER.debug("infermeter: evaluate failed", exc_info=True)


def feedback(
    trace_or_response_id: str,
    score: float | None = None,
    label: str | None = None,
    comment: str | None = None,
    *,
    span_id: str | None = None,
    name: str = sc.USER_FEEDBACK,
) -> None:
    """User feedback on an earlier request, from any process, as an evaluation result.

    ``trace_or_response_id`` is the request's trace id (32 hex digits, e.g. returned to
    the client in a ``traceparent`` header; ``span_id`` narrows it to one span) or its
    ``gen_ai.response.id``. Thumbs up/down: ``score=1`` / ``score=-1`` or
    ``label="thumbs_up"`` / ``"thumbs_down"``; analytics count a score < 0 or a label
    in the negative set as negative feedback. Sent as an OTLP log record. Never raises.
    """
    try:
        key = _text(trace_or_response_id)
        if key is None:
            LOGGER.debug("infermeter: feedback() needs a trace id or a response id")
            return
        lowered = key.lower()
        response_id = None if _TRACE_ID.match(lowered) else key
        attributes = _attributes(name, score, label, comment, response_id)
        if attributes is None:
            return
        # The comment is the user's words, not an evaluator's explanation.
        if sc.GEN_AI_EVALUATION_EXPLANATION in attributes:
            attributes[sc.INFERMETER_FEEDBACK_COMMENT] = attributes.pop(
                sc.GEN_AI_EVALUATION_EXPLANATION
            )
        target: Span | None = None
        if response_id is None:
            span_number = 0
            if span_id is not None and _SPAN_ID.match(span_id.lower()):
                span_number = int(span_id, 16)
            # A span id of 0 leaves the record's span_id empty: linked to the trace only.
            target = NonRecordingSpan(
                SpanContext(
                    int(lowered, 16),
                    span_number,
                    is_remote=True,
                    trace_flags=TraceFlags(TraceFlags.SAMPLED),
                )
            )
        _emit_log(attributes, target)
    except Exception:  # noqa: BLE001 - feedback telemetry never raises into the caller
        LOGGER.debug("infermeter: feedback failed", exc_info=True)
