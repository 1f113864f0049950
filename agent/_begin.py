"""The start of an observed call: its attributes, cold start, retries, the span."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from infermeter.agent._call import CURRENT, ROOT_ATTEMPTS, Call
from infermeter.agent._clock import VIRTUAL_CLOCK
from infermeter.agent._content import input_messages, messages_json
from infermeter.agent._duck import LOGGER, Shown, field, text
from infermeter.agent._pipeline import Active, Pipeline, active
from infermeter.agent._runtime import (
    COLD_START,
    INIT_PROVISIONED_CONCURRENCY,
    INIT_SNAP_START,
    seconds_since_process_start,
)
from infermeter.agent._spec import Spec
from infermeter.agent.semconv import (
    FAAS_COLDSTART,
    FAAS_INVOCATION_ID,
    FAAS_TRIGGER,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_PROMPT_NAME,
    GEN_AI_PROMPT_VERSION,
    INFERMETER_INIT_DURATION,
    INFERMETER_INITIALIZATION_TYPE,
    INFERMETER_RETRIES,
    TENANT_ID,
)
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan

__all__ = ["begin"]

_INHERITED: Final = (TENANT_ID, GEN_AI_PROMPT_NAME, GEN_AI_PROMPT_VERSION)


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


def _entry(
    pipeline: Pipeline, spec: Spec, args: Sequence[object], attributes: dict[str, Any]
) -> tuple[bool, float | None, object, int]:
    """The rarer parts of an outermost call (its template already says entry, not cold,
    no retries): the cold start, Lambda's invocation id and trigger, retries under a
    foreign parent. Returns (cold, init, retry key, retries)."""
    cold, init = False, None
    if COLD_START.pending:
        cold, init = _cold_start(pipeline, attributes)
    if pipeline.is_lambda:
        _lambda_attributes(args, attributes)
    if not ROOT_ATTEMPTS:
        # No outermost call failed lately: nothing to count; the key is found on failure.
        return cold, init, None, 0
    foreign = trace.get_current_span().get_span_context()
    if not foreign.is_valid:
        return cold, init, None, 0
    key = (foreign.span_id, spec)
    return cold, init, key, ROOT_ATTEMPTS.get(key, 0)


def _nested(parent: Call, spec: Spec, attributes: dict[str, Any]) -> int:
    """Inherit tenant and prompt from the enclosing call; returns the retries so far."""
    for key in _INHERITED:
        if key not in attributes:
            value = parent.inherited(key)
            if value is not None:
                attributes[key] = value
    attempts = parent.attempts
    return attempts.get(spec, 0) if attempts else 0


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


def _can_record(pipeline: Pipeline) -> bool:
    if pipeline.records():
        return True
    if COLD_START.pending:
        # The process's first call was this one, recorded or not: a span recorded after
        # the application installs its SDK is no cold start.
        COLD_START.claim()
    return False


def begin(
    spec: Spec, args: Sequence[object], kwargs: Mapping[str, object], attach: bool
) -> Call | None:
    """Start the span of one call; None when telemetry is off or failed (run unobserved)."""
    try:
        pipeline = Active.current or active()
        if not pipeline.enabled or not (pipeline.can_record or _can_record(pipeline)):
            return None
        parent = CURRENT.get()
        attributes = spec.start_attributes(pipeline, parent is None)
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
            if COLD_START.pending or pipeline.is_lambda or ROOT_ATTEMPTS:
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
        call = Call(
            spec, pipeline, span, start_ns, attributes, clock, parent, cold, init, retry_key
        )
        if type(span) is NonRecordingSpan and span is trace.get_current_span():
            call.attach_context = False
    except Exception:  # noqa: BLE001 - telemetry must not raise into user code
        LOGGER.debug("infermeter: starting a span failed; running unobserved", exc_info=True)
        return None
    if attach:
        call.enter()
    return call
