"""The telemetry pipeline observed calls write to, and ``configure()`` / ``shutdown()``.

Three sources, most specific first:

1. a test override (``infermeter.agent.testing.capture``), a stack;
2. the pipeline built by ``configure()`` (its own TracerProvider and MeterProvider);
3. otherwise the application's *global* OpenTelemetry providers, through the API's proxy
   tracer and meter — so ``@observe`` composes with any existing OTel setup and picks up a
   provider the application installs later.

``configure()`` semantics:

* Called again with identical settings (and nothing injected), it returns the existing
  configuration: frameworks that import-and-configure from several modules are safe.
* Called again with different settings, it builds a new pipeline that observed calls use
  from their next call, and flushes the previous one. The previous pipeline is shut down
  unless it was installed as OpenTelemetry's global provider: OpenTelemetry allows setting
  the global providers once per process, other instrumentation may hold tracers from it,
  and shutting it down would silently drop their spans.
* ``set_global=True`` (the default) installs the new providers as OpenTelemetry's globals
  only when the application has not set any, so other instrumentation (HTTP clients,
  frameworks) exports through the same pipeline.

``shutdown()`` drains queued metrics, flushes (bounded) and shuts the configured pipeline
down; observed calls then fall back to the global providers. The SDK providers also
register their own exit hooks, and the metric recorder drains before them.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent._config import AgentSettings, resolve_settings
from infermeter.agent._duck import LOGGER
from infermeter.agent._recorder import RECORDER, Instruments
from infermeter.agent._runtime import RuntimeInfo, detect_runtime
from infermeter.agent.semconv import (
    BUCKETS_DURATION_S,
    BUCKETS_INIT_DURATION_S,
    BUCKETS_TOKENS,
    CLOUD_PLATFORM,
    CLOUD_PROVIDER,
    CLOUD_REGION,
    FAAS_MAX_MEMORY,
    FAAS_NAME,
    INFERMETER_SCOPE,
    METRIC_FAAS_INIT_DURATION,
    METRIC_OPERATION_DURATION,
    METRIC_TIME_TO_FIRST_CHUNK,
    METRIC_TOKEN_USAGE,
    PLATFORM_AWS_LAMBDA,
    SERVICE_NAME,
)
from infermeter.agent.settings import ConfigurationError
from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter, NoOpHistogram, NoOpMeter
from opentelemetry.trace import NoOpTracer, Tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler

__all__ = [
    "BACKGROUND",
    "Active",
    "Configuration",
    "Pipeline",
    "active",
    "build_pipeline",
    "configure",
    "force_flush",
    "pop_override",
    "push_override",
    "reset_global_pipeline",
    "shutdown",
]

_DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 5.0


# Resource facts the analytics price compute with (platform, region, memory size).
_ENTRY_RUNTIME_KEYS: Final = frozenset(
    {CLOUD_PLATFORM, CLOUD_PROVIDER, CLOUD_REGION, FAAS_MAX_MEMORY, FAAS_NAME}
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("infermeter")
    except PackageNotFoundError:
        return "0.0.0"


@dataclass(frozen=True)
class Configuration:
    """What ``configure()`` built: resolved settings, runtime, resource and providers."""

    settings: AgentSettings
    runtime: str
    resource: Mapping[str, object]
    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None


@dataclass(eq=False, slots=True)
class Pipeline:
    """Everything an observed call needs, resolved once (read on every call)."""

    settings: AgentSettings
    runtime: RuntimeInfo
    tracer: Tracer
    instruments: Instruments
    enabled: bool
    flush_on_return: bool
    # Providers this pipeline owns; None when writing to the application's globals.
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    is_global: bool = False
    # False when the pipeline's MeterProvider has no reader: nothing to record.
    records_metrics: bool = True
    # Read on every call: precomputed from settings and runtime.
    is_lambda: bool = field(init=False, default=False)
    runtime_name: str = field(init=False, default="")
    capture_content: bool = field(init=False, default=False)
    embedding_rate: float = field(init=False, default=0.0)

    # Runtime facts the tracer's resource lacks, put on entry spans instead (see below).
    entry_runtime_attributes: dict[str, Any] | None = field(init=False, default=None)
    # Set once a span or a metric of this pipeline can be recorded; never unset (the API
    # lets a provider be installed once, never removed).
    can_record: bool = field(init=False, default=False)

    def records(self) -> bool:
        """False while neither a span nor a metric can be recorded: the API's no-op tracer
        and meter, or its proxies before the application installs an SDK provider. Calls
        then run unobserved, at the cost of this check (what telemetry-off should cost)."""
        if self.can_record:
            return True
        if _tracer_idle(self.tracer) and (
            not self.records_metrics or _instrument_idle(self.instruments.duration)
        ):
            return False
        self.can_record = True
        return True

    def runtime_attributes_for_entry(self) -> dict[str, Any]:
        """The detected cloud.* / faas.* facts the spans' resource does not carry.

        configure() puts them on the resource. An application that set its own
        TracerProvider (no configure()) has a resource without them, so the entry span
        carries them instead: the collector reads span attributes first, and the compute
        model must tell Lambda from Cloud Functions. Computed once the application's
        provider exists (while it is the API's proxy, spans are not recorded anyway).
        """
        cached = self.entry_runtime_attributes
        if cached is not None:
            return cached
        provider = self.tracer_provider or trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):
            return {}
        resource = getattr(getattr(provider, "resource", None), "attributes", None) or {}
        extra = {
            key: value
            for key, value in self.runtime.resource.items()
            if key in _ENTRY_RUNTIME_KEYS and key not in resource
        }
        self.entry_runtime_attributes = extra
        return extra

    def __post_init__(self) -> None:
        self.is_lambda = self.runtime.platform == PLATFORM_AWS_LAMBDA
        self.runtime_name = self.runtime.runtime
        self.capture_content = self.settings.capture_content
        self.embedding_rate = self.settings.capture_embeddings

    @property
    def configuration(self) -> Configuration:
        resource: Mapping[str, object] = {}
        if self.tracer_provider is not None:
            resource = dict(self.tracer_provider.resource.attributes)
        return Configuration(
            self.settings, self.runtime.runtime, resource, self.tracer_provider, self.meter_provider
        )

    def flush(self, timeout_s: float) -> bool:
        """Drain queued metrics, then flush spans and metrics; waits at most ``timeout_s``."""
        RECORDER.drain()
        tracer_provider: object = self.tracer_provider
        meter_provider: object = self.meter_provider
        if tracer_provider is None:
            tracer_provider = trace.get_tracer_provider()
        if meter_provider is None:
            meter_provider = metrics.get_meter_provider()
        timeout_ms = max(int(timeout_s * 1000), 1)

        def flush_both() -> bool:
            ok = True
            for provider in (tracer_provider, meter_provider):
                flush = getattr(provider, "force_flush", None)
                if callable(flush):
                    ok = flush(timeout_millis=timeout_ms) is not False and ok
            return ok

        return BACKGROUND.run(flush_both, timeout_s)

    def shutdown(self, timeout_s: float) -> None:
        """Flush and shut the owned providers down, waiting at most ``timeout_s`` in all."""
        RECORDER.drain()
        tracer_provider, meter_provider = self.tracer_provider, self.meter_provider
        timeout_ms = max(int(timeout_s * 1000), 1)

        def shut_down() -> bool:
            if tracer_provider is not None:
                tracer_provider.force_flush(timeout_millis=timeout_ms)
                tracer_provider.shutdown()
            if meter_provider is not None:
                meter_provider.shutdown(timeout_millis=timeout_ms)
            return True

        BACKGROUND.run(shut_down, timeout_s)


class _Background:
    """Runs flushes on one helper thread so that the caller waits at most a timeout.

    The SDK's ``BatchSpanProcessor.force_flush`` ignores its timeout (it exports on the
    caller's thread until done; opentelemetry-python#4568), and an OTLP export can retry
    for up to its own 10 s timeout. A FaaS handler must not hang that long: it returns
    after ``flush_timeout`` and the flush finishes on this thread (after a sandbox thaw,
    at worst).
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[
            tuple[Callable[[], bool], threading.Event, list[bool]]
        ] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_thread)

    def _forget_thread(self) -> None:
        # A forked child has no copy of the helper thread (nor of queued requests).
        self._thread = None
        self._lock = threading.Lock()
        self._requests = queue.SimpleQueue()

    def run(self, job: Callable[[], bool], timeout_s: float) -> bool:
        """Run ``job`` on the helper thread; True when it finished in time and succeeded."""
        done = threading.Event()
        outcome = [False]
        self._ensure_thread()
        self._requests.put((job, done, outcome))
        return done.wait(timeout_s) and outcome[0]

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="infermeter-flush", daemon=True
                )
                self._thread.start()

    def _work(self) -> None:
        while True:
            job, done, outcome = self._requests.get()
            try:
                outcome[0] = job()
            except Exception:  # noqa: BLE001 - a failing flush is logged, never raised
                LOGGER.debug("infermeter: flush failed", exc_info=True)
            finally:
                done.set()


BACKGROUND: Final = _Background()


def _runtime(settings: AgentSettings) -> RuntimeInfo:
    info = detect_runtime()
    return replace(info, runtime=settings.runtime) if settings.runtime else info


def _flush_on_return(settings: AgentSettings, runtime: RuntimeInfo) -> bool:
    if settings.flush_on_return is not None:
        return settings.flush_on_return
    return runtime.is_faas


def _disabled(settings: AgentSettings, runtime: RuntimeInfo) -> Pipeline:
    return Pipeline(
        settings,
        runtime,
        NoOpTracer(),
        Instruments.from_meter(NoOpMeter("noop")),
        enabled=False,
        flush_on_return=False,
    )


def _resource(settings: AgentSettings, runtime: RuntimeInfo) -> Resource:
    from opentelemetry.sdk.resources import Resource

    attributes: dict[str, Any] = dict(runtime.resource)
    attributes.update(settings.resource_attributes)
    if settings.service_name:
        attributes[SERVICE_NAME] = settings.service_name
    elif SERVICE_NAME not in attributes and runtime.default_service_name:
        attributes[SERVICE_NAME] = runtime.default_service_name
    # Resource.create adds the SDK's detectors (service.instance.id, telemetry.sdk.*,
    # OTEL_RESOURCE_ATTRIBUTES) underneath these attributes.
    return Resource.create(attributes)


def _sampler(settings: AgentSettings) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    rate = 1.0 if settings.traces_sampler_arg is None else settings.traces_sampler_arg
    samplers: dict[str, Sampler] = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "traceidratio": sampling.TraceIdRatioBased(rate),
        "parentbased_traceidratio": sampling.ParentBasedTraceIdRatio(rate),
    }
    return samplers[settings.traces_sampler]


def _views() -> list[Any]:
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    buckets = (
        (METRIC_OPERATION_DURATION, BUCKETS_DURATION_S),
        (METRIC_TIME_TO_FIRST_CHUNK, BUCKETS_DURATION_S),
        (METRIC_TOKEN_USAGE, BUCKETS_TOKENS),
        (METRIC_FAAS_INIT_DURATION, BUCKETS_INIT_DURATION_S),
    )
    return [
        View(
            instrument_name=name,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=boundaries),
        )
        for name, boundaries in buckets
    ]


def _span_exporter(settings: AgentSettings) -> SpanExporter | None:
    if settings.traces_exporter == "none":
        return None
    if settings.traces_exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=settings.traces_url, headers=settings.headers)


def _metric_reader(settings: AgentSettings) -> MetricReader | None:
    if settings.metrics_exporter == "none":
        return None
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        PeriodicExportingMetricReader,
    )

    exporter: MetricExporter
    if settings.metrics_exporter == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        exporter = ConsoleMetricExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=settings.metrics_url, headers=settings.headers)
    return PeriodicExportingMetricReader(
        exporter, export_interval_millis=settings.metric_export_interval
    )


# The API has no public "can this tracer/instrument record" check; these read what its own
# proxies read (ProxyTracer._tracer, _ProxyInstrument.*), and an attribute that is not
# there makes the answer "it may record", which only loses the fast path.
def _tracer_idle(tracer: Tracer) -> bool:
    kind = type(tracer)
    if kind is NoOpTracer:
        return True
    if kind is trace.ProxyTracer:
        return (
            getattr(tracer, "_real_tracer", True) is None
            and getattr(trace, "_TRACER_PROVIDER", True) is None
        )
    return False


def _instrument_idle(instrument: object) -> bool:
    if isinstance(instrument, NoOpHistogram):
        return True
    return type(instrument).__name__ == "_ProxyHistogram" and (
        getattr(instrument, "_real_instrument", True) is None
    )


def _global_providers_unset() -> tuple[bool, bool]:
    tracer_unset = isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    # The API exposes no public "is the global meter provider set" check.
    meter_unset = type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
    return tracer_unset, meter_unset


def build_pipeline(
    settings: AgentSettings,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    synchronous: bool = False,
    set_global: bool = False,
    shutdown_on_exit: bool = True,
) -> Pipeline:
    """A pipeline with its own SDK providers (``synchronous``: export on the caller's thread,
    for tests)."""
    runtime = _runtime(settings)
    if settings.sdk_disabled:
        return _disabled(settings, runtime)
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = _resource(settings, runtime)
    tracer_provider = TracerProvider(
        resource=resource, sampler=_sampler(settings), shutdown_on_exit=shutdown_on_exit
    )
    from infermeter.agent._drain import DrainFirst

    # First: a direct force_flush()/shutdown() of the provider ends queued calls' spans.
    tracer_provider.add_span_processor(DrainFirst())
    exporter = span_exporter if span_exporter is not None else _span_exporter(settings)
    if exporter is not None:
        processor = (
            SimpleSpanProcessor(exporter)
            if synchronous
            else BatchSpanProcessor(exporter, max_queue_size=settings.span_queue_size)
        )
        tracer_provider.add_span_processor(processor)
    reader = metric_reader if metric_reader is not None else _metric_reader(settings)
    meter_provider = MeterProvider(
        metric_readers=[reader] if reader is not None else [],
        resource=resource,
        views=_views(),
        shutdown_on_exit=shutdown_on_exit,
    )
    # The SDK providers read OTEL_SDK_DISABLED themselves; an explicit sdk_disabled=False
    # (or testing.capture, which ignores the environment) must win over it.
    for provider in (tracer_provider, meter_provider):
        if getattr(provider, "_disabled", False):
            provider._disabled = False
    version = _version()
    pipeline = Pipeline(
        settings,
        runtime,
        tracer_provider.get_tracer(INFERMETER_SCOPE, version),
        Instruments.from_meter(meter_provider.get_meter(INFERMETER_SCOPE, version)),
        enabled=True,
        flush_on_return=_flush_on_return(settings, runtime),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        records_metrics=reader is not None,
    )
    if set_global:
        tracer_unset, meter_unset = _global_providers_unset()
        if tracer_unset:
            trace.set_tracer_provider(tracer_provider)
            pipeline.is_global = True
        if meter_unset:
            metrics.set_meter_provider(meter_provider)
        if not tracer_unset:
            LOGGER.debug("infermeter: a global TracerProvider exists; not replacing it")
    # Queued metrics must be recorded before the providers' own exit hooks shut them down.
    RECORDER.register_exit_hook()
    return pipeline


def _global_pipeline() -> Pipeline:
    """Observed calls without configure(): the application's providers via the API proxies."""
    settings = resolve_settings(lenient=True)
    runtime = _runtime(settings)
    if settings.sdk_disabled:
        return _disabled(settings, runtime)
    version = _version()
    meter: Meter = metrics.get_meter(INFERMETER_SCOPE, version)
    return Pipeline(
        settings,
        runtime,
        trace.get_tracer(INFERMETER_SCOPE, version),
        Instruments.from_meter(meter),
        enabled=True,
        flush_on_return=_flush_on_return(settings, runtime),
    )


class Active:
    # The pipeline observed calls use; None until first needed (then the global one).
    current: Pipeline | None = None
    configured: Pipeline | None = None
    global_pipeline: Pipeline | None = None
    overrides: list[Pipeline] = []  # noqa: RUF012 - class used as a namespace, not instances


_LOCK: Final = threading.RLock()


def _refresh() -> None:
    if Active.overrides:
        Active.current = Active.overrides[-1]
    else:
        Active.current = Active.configured or Active.global_pipeline


def active() -> Pipeline:
    pipeline = Active.current
    if pipeline is not None:
        return pipeline
    with _LOCK:
        if Active.global_pipeline is None:
            Active.global_pipeline = _global_pipeline()
        _refresh()
        return Active.current or Active.global_pipeline


def push_override(pipeline: Pipeline) -> None:
    with _LOCK:
        Active.overrides.append(pipeline)
        _refresh()


def pop_override(pipeline: Pipeline) -> None:
    with _LOCK:
        if pipeline in Active.overrides:
            Active.overrides.remove(pipeline)
        _refresh()


def reset_global_pipeline() -> None:
    """Forget the lazily built global pipeline (re-reads the environment on next use)."""
    with _LOCK:
        Active.global_pipeline = None
        _refresh()


def configure(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    traces_endpoint: str | None = None,
    metrics_endpoint: str | None = None,
    logs_endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    protocol: str | None = None,
    traces_exporter: str | None = None,
    metrics_exporter: str | None = None,
    metric_export_interval: int | None = None,
    sdk_disabled: bool | None = None,
    traces_sampler: str | None = None,
    traces_sampler_arg: float | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    capture_content: bool | None = None,
    capture_embeddings: float | None = None,
    max_embedding_dims: int | None = None,
    max_embeddings_per_span: int | None = None,
    max_content_chars: int | None = None,
    flush_on_return: bool | None = None,
    flush_timeout: float | None = None,
    runtime: str | None = None,
    span_queue_size: int | None = None,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    set_global: bool = True,
) -> Configuration:
    """Set up tracing and metrics export for observed functions.

    Every argument left at None falls back to its environment variable, then its default
    (see ``SETTINGS`` / the README's configuration table). ``span_exporter`` and
    ``metric_reader`` replace the OTLP exporters (e.g. to send elsewhere or keep data in
    memory). Raises ``ConfigurationError`` — and nothing else — for unusable values.
    """
    explicit = {
        "service_name": service_name,
        "endpoint": endpoint,
        "traces_endpoint": traces_endpoint,
        "metrics_endpoint": metrics_endpoint,
        "logs_endpoint": logs_endpoint,
        "headers": headers,
        "protocol": protocol,
        "traces_exporter": traces_exporter,
        "metrics_exporter": metrics_exporter,
        "metric_export_interval": metric_export_interval,
        "sdk_disabled": sdk_disabled,
        "traces_sampler": traces_sampler,
        "traces_sampler_arg": traces_sampler_arg,
        "resource_attributes": resource_attributes,
        "capture_content": capture_content,
        "capture_embeddings": capture_embeddings,
        "max_embedding_dims": max_embedding_dims,
        "max_embeddings_per_span": max_embeddings_per_span,
        "max_content_chars": max_content_chars,
        "flush_on_return": flush_on_return,
        "flush_timeout": flush_timeout,
        "runtime": runtime,
        "span_queue_size": span_queue_size,
    }
    try:
        settings = resolve_settings(explicit)
    except ConfigurationError:
        raise
    except Exception as exc:  # noqa: BLE001 - configure raises ConfigurationError only
        raise ConfigurationError(f"invalid configuration: {exc}") from None
    injected = span_exporter is not None or metric_reader is not None
    with _LOCK:
        previous = Active.configured
        if previous is not None and not injected and previous.settings == settings:
            return previous.configuration
        try:
            pipeline = build_pipeline(
                settings,
                span_exporter=span_exporter,
                metric_reader=metric_reader,
                set_global=set_global,
            )
        except ConfigurationError:
            raise
        except Exception as exc:  # noqa: BLE001 - configure raises ConfigurationError only
            raise ConfigurationError(f"cannot set up telemetry: {exc}") from None
        Active.configured = pipeline
        _refresh()
    if previous is not None:
        _retire(previous)
    return pipeline.configuration


def _retire(pipeline: Pipeline) -> None:
    try:
        if pipeline.is_global:
            pipeline.flush(pipeline.settings.flush_timeout)
        else:
            pipeline.shutdown(pipeline.settings.flush_timeout)
    except Exception:  # noqa: BLE001 - retiring an old pipeline must not fail configure()
        LOGGER.debug("infermeter: retiring the previous pipeline failed", exc_info=True)


def shutdown(timeout: float = _DEFAULT_SHUTDOWN_TIMEOUT_S) -> None:
    """Flush (within ``timeout`` seconds) and shut down what ``configure()`` built.

    Observed functions keep working afterwards, writing to the global providers."""
    with _LOCK:
        pipeline = Active.configured
        Active.configured = None
        _refresh()
    RECORDER.drain()
    try:
        from infermeter.agent._quality import flush_logs

        flush_logs(timeout)
    except Exception:  # noqa: BLE001 - shutdown runs at exit; it must not raise
        LOGGER.debug("infermeter: flushing evaluations failed", exc_info=True)
    if pipeline is None:
        return
    try:
        pipeline.shutdown(timeout)
    except Exception:  # noqa: BLE001 - shutdown runs at exit; it must not raise
        LOGGER.debug("infermeter: shutdown failed", exc_info=True)


def force_flush(timeout: float = _DEFAULT_SHUTDOWN_TIMEOUT_S) -> bool:
    """Export everything recorded so far (within ``timeout`` seconds); True on success."""
    try:
        from infermeter.agent._quality import flush_logs

        return flush_logs(timeout) and active().flush(timeout)
    except Exception:  # noqa: BLE001 - flushing telemetry must not raise into the caller
        LOGGER.debug("infermeter: flush failed", exc_info=True)
        return False
