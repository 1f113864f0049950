"""Test and simulation helpers for code instrumented with infermeter (public API).

Capture what observed code emits, in memory, for a block::

    from infermeter.agent import testing

    with testing.capture() as cap:
        answer("hello")
    span = cap.span("chat gpt-4o-mini")
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert cap.metric_points("gen_ai.client.operation.duration")

Drive observed code on a simulated clock (``infermeter demo`` replays weeks of traffic in a
minute through the real decorator and exporter)::

    with testing.virtual_time(start=datetime(2026, 11, 16, 9, 0, tzinfo=UTC)):
        handle(request)          # inside, a fake model calls testing.advance(0.8)

Each ``virtual_time`` block has its own clock in a context variable, so simulated requests
that overlap in simulated time can run one after another (or as asyncio tasks) in real
time. Outside any ``virtual_time`` block ``advance`` really sleeps, so simulation code also
runs unchanged in real time.

Simulate several services or instances, each with its own resource (``service.name``,
``service.instance.id``) and real exporters, by routing blocks of calls to separately
built pipelines::

    api_1 = testing.telemetry(service_name="chat-api", runtime="serverless",
                              resource_attributes={"service.instance.id": "sandbox-1"},
                              flush_on_return=False)
    with api_1:
        handle(request)
    api_1.shutdown()
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from infermeter.agent._clock import VIRTUAL_CLOCK, VirtualClock
from infermeter.agent._config import resolve_settings
from infermeter.agent._pipeline import (
    Configuration,
    Pipeline,
    build_pipeline,
    pop_override,
    push_override,
)
from infermeter.agent._quality import restore_logs, swap_logs
from infermeter.agent._recorder import RECORDER
from infermeter.agent._runtime import reset_cold_start
from infermeter.agent.settings import ConfigurationError
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = [
    "Capture",
    "Telemetry",
    "VirtualClock",
    "advance",
    "capture",
    "now",
    "reset_cold_start",
    "telemetry",
    "virtual_time",
]


class Capture:
    """Spans and metrics observed code emitted inside a ``capture()`` block."""

    def __init__(
        self,
        pipeline: Pipeline,
        spans: InMemorySpanExporter,
        reader: InMemoryMetricReader,
        logs: Any = None,
    ) -> None:
        self.pipeline = pipeline
        self._spans = spans
        self._reader = reader
        self._logs = logs

    @property
    def log_records(self) -> list[Any]:
        """Log records ``evaluate()`` / ``feedback()`` emitted (SDK ``ReadableLogRecord``s;
        the OpenTelemetry ``LogRecord`` is ``.log_record``)."""
        return list(self._logs.get_finished_logs()) if self._logs is not None else []

    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        # Observed calls end their spans on the background thread: wait for those queued.
        RECORDER.drain()
        return list(self._spans.get_finished_spans())

    def spans_named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans if span.name == name]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (AssertionError otherwise)."""
        found = self.spans_named(name)
        if len(found) != 1:
            names = sorted({span.name for span in self.spans})
            raise AssertionError(
                f"expected one span named {name!r}, found {len(found)}; span names: {names}"
            )
        return found[0]

    def attributes(self, name: str) -> dict[str, Any]:
        """The attributes of the one span called ``name``, as a plain dict."""
        return dict(self.span(name).attributes or {})

    def metrics(self) -> dict[str, list[Any]]:
        """Every metric recorded so far: name -> data points (cumulative)."""
        RECORDER.drain()
        data = self._reader.get_metrics_data()
        result: dict[str, list[Any]] = {}
        if data is None:
            return result
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    result.setdefault(metric.name, []).extend(metric.data.data_points)
        return result

    def metric_points(self, name: str) -> list[Any]:
        return self.metrics().get(name, [])

    def clear(self) -> None:
        """Forget the spans captured so far (metrics are cumulative and stay)."""
        self._spans.clear()


@contextmanager
def capture(
    *,
    runtime: str | None = None,
    service_name: str | None = "infermeter-test",
    capture_content: bool = False,
    capture_embeddings: float = 0.0,
    max_embedding_dims: int | None = None,
    max_embeddings_per_span: int | None = None,
    max_content_chars: int | None = None,
    flush_on_return: bool | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    fresh_process: bool = False,
) -> Iterator[Capture]:
    """Route everything observed code emits in this block to memory.

    Settings come only from the arguments (the process environment's ``OTEL_*`` /
    ``INFERMETER_*`` settings are ignored, so tests are deterministic); runtime detection
    still reads the environment, so ``monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", ...)``
    works. ``fresh_process=True`` makes the next outermost call a cold start again.
    Spans are exported synchronously, so they are visible as soon as a call returns.
    """
    explicit: dict[str, Any] = {
        "service_name": service_name,
        "runtime": runtime,
        "capture_content": capture_content,
        "capture_embeddings": capture_embeddings,
        "max_embedding_dims": max_embedding_dims,
        "max_embeddings_per_span": max_embeddings_per_span,
        "max_content_chars": max_content_chars,
        "flush_on_return": flush_on_return,
        "resource_attributes": resource_attributes,
    }
    settings = resolve_settings(explicit, environ={})
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    pipeline = build_pipeline(
        settings,
        span_exporter=spans,
        metric_reader=reader,
        synchronous=True,
        shutdown_on_exit=False,
    )
    if fresh_process:
        reset_cold_start()
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logger_provider = LoggerProvider(resource=pipeline.tracer_provider.resource)  # type: ignore[union-attr]
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    previous_logs = swap_logs(logger_provider)
    push_override(pipeline)
    try:
        yield Capture(pipeline, spans, reader, logs)
    finally:
        pop_override(pipeline)
        restore_logs(previous_logs)
        logger_provider.shutdown()
        RECORDER.drain()
        if pipeline.tracer_provider is not None:
            pipeline.tracer_provider.shutdown()
        if pipeline.meter_provider is not None:
            pipeline.meter_provider.shutdown()


class Telemetry:
    """A pipeline built like ``configure()`` that observed calls use only inside ``with``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def __enter__(self) -> Telemetry:
        push_override(self._pipeline)
        return self

    def __exit__(self, *exc_info: object) -> None:
        pop_override(self._pipeline)

    @property
    def configuration(self) -> Configuration:
        return self._pipeline.configuration

    def force_flush(self, timeout: float = 5.0) -> bool:
        return self._pipeline.flush(timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        pop_override(self._pipeline)
        self._pipeline.shutdown(timeout)


def telemetry(
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    **settings: Any,
) -> Telemetry:
    """Build a pipeline from ``configure()``'s settings (explicit > environment > default)
    without installing it anywhere; enter the returned object to route calls to it.
    Raises ``ConfigurationError`` for unusable settings, like ``configure()``."""
    resolved = resolve_settings(settings)
    try:
        pipeline = build_pipeline(
            resolved, span_exporter=span_exporter, metric_reader=metric_reader
        )
    except Exception as exc:  # noqa: BLE001 - configuration errors only, like configure()
        raise ConfigurationError(f"cannot set up telemetry: {exc}") from None
    return Telemetry(pipeline)


def _to_ns(start: float | datetime) -> int:
    if isinstance(start, datetime):
        if start.tzinfo is None:
            raise ValueError("virtual_time needs a timezone-aware datetime (e.g. tzinfo=UTC)")
        return round(start.timestamp() * 1e9)
    return round(float(start) * 1e9)


@contextmanager
def virtual_time(start: float | datetime) -> Iterator[VirtualClock]:
    """Observed calls in this block (this context) take their times from a virtual clock
    starting at ``start`` (Unix seconds or an aware datetime)."""
    clock = VirtualClock(_to_ns(start))
    token = VIRTUAL_CLOCK.set(clock)
    try:
        yield clock
    finally:
        VIRTUAL_CLOCK.reset(token)


def advance(seconds: float) -> None:
    """Let ``seconds`` pass: on the current virtual clock, or really (sleep) without one."""
    clock = VIRTUAL_CLOCK.get()
    if clock is None:
        time.sleep(seconds)
    else:
        clock.advance(seconds)


def now() -> float:
    """Unix seconds on the current virtual clock, or the wall clock without one."""
    clock = VIRTUAL_CLOCK.get()
    return time.time() if clock is None else clock.seconds
