"""configure(): precedence, validation (ConfigurationError only), re-configuration, flushing."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from infermeter.agent import (
    SETTINGS,
    ConfigurationError,
    configure,
    force_flush,
    observe,
    shutdown,
)
from infermeter.agent._config import resolve_settings
from infermeter.agent.settings import add_arguments, settings_table_markdown
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class RecordingExporter(SpanExporter):
    def __init__(self, block: threading.Event | None = None) -> None:
        self.spans: list[ReadableSpan] = []
        self.shutdowns = 0
        self.block = block

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.block is not None:
            self.block.wait(60)
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shutdowns += 1


@observe(operation="chat", model="m")
def handler() -> str:
    return "ok"


def test_defaults_send_to_the_local_collector() -> None:
    settings = resolve_settings(environ={})
    assert settings.traces_url == "http://127.0.0.1:4318/v1/traces"
    assert settings.metrics_url == "http://127.0.0.1:4318/v1/metrics"
    assert settings.capture_content is False
    assert settings.capture_embeddings == 0.0
    assert settings.flush_on_return is None
    assert settings.traces_sampler == "parentbased_always_on"


def test_precedence_explicit_then_env_then_default() -> None:
    env = {
        "OTEL_SERVICE_NAME": "from-env",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:9000/custom",
        "INFERMETER_CAPTURE_EMBEDDINGS": "0.1",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod,team=ml%20platform",
    }
    settings = resolve_settings(environ=env)
    assert settings.service_name == "from-env"
    assert settings.traces_url == "http://collector:4318/v1/traces"
    assert settings.metrics_url == "http://metrics:9000/custom"
    assert settings.capture_embeddings == 0.1
    assert settings.capture_content is True
    assert settings.traces_sampler_arg == 0.25
    assert settings.resource_attributes == {
        "deployment.environment.name": "prod",
        "team": "ml platform",
    }
    explicit = resolve_settings(
        {"service_name": "explicit", "endpoint": "https://otlp.example", "capture_embeddings": 0.5},
        environ=env,
    )
    assert explicit.service_name == "explicit"
    # An explicit base endpoint beats the environment's signal-specific one.
    assert explicit.metrics_url == "https://otlp.example/v1/metrics"
    assert explicit.capture_embeddings == 0.5
    specific = resolve_settings({"traces_endpoint": "http://t:1/x"}, environ=env)
    assert specific.traces_url == "http://t:1/x"


BAD_ENV = [
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ("OTEL_TRACES_EXPORTER", "zipkin"),
    ("OTEL_METRICS_EXPORTER", "prometheus"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "soon"),
    ("OTEL_SDK_DISABLED", "maybe"),
    ("OTEL_TRACES_SAMPLER", "sometimes"),
    ("OTEL_TRACES_SAMPLER_ARG", "2"),
    ("OTEL_RESOURCE_ATTRIBUTES", "=nokey"),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "sometimes"),
    ("INFERMETER_CAPTURE_EMBEDDINGS", "1.5"),
    ("INFERMETER_MAX_EMBEDDING_DIMS", "0"),
    ("INFERMETER_MAX_EMBEDDINGS_PER_SPAN", "-4"),
    ("INFERMETER_MAX_CONTENT_CHARS", "1e9"),
    ("INFERMETER_FLUSH_ON_RETURN", "always"),
    ("INFERMETER_FLUSH_TIMEOUT", "inf"),
    ("INFERMETER_RUNTIME", "mainframe"),
]


@pytest.mark.parametrize(("name", "value"), BAD_ENV, ids=[n for n, _ in BAD_ENV])
def test_bad_environment_values_raise_configuration_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        configure(span_exporter=RecordingExporter(), set_global=False)


def test_header_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization-sk-live-123")
    with pytest.raises(ConfigurationError) as error:
        configure(set_global=False)
    assert "sk-live-123" not in str(error.value)
    settings = resolve_settings({"headers": {"authorization": "Bearer sk-live-123"}}, {})
    assert "sk-live-123" not in repr(settings)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capture_embeddings": 2.0},
        {"capture_embeddings": "lots"},
        {"max_embedding_dims": True},
        {"max_embedding_dims": 0},
        {"flush_timeout": math.inf},
        {"flush_on_return": "yes please"},
        {"headers": {"authorization": 42}},
        {"resource_attributes": ["not", "a", "mapping"]},
        {"endpoint": 4318},
        {"runtime": "lambda"},
        {"traces_sampler_arg": -0.1},
        {"metric_export_interval": 1.5},
    ],
)
def test_bad_explicit_arguments_raise_configuration_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        configure(set_global=False, **kwargs)


def test_configure_twice_with_same_settings_is_idempotent() -> None:
    first = configure(traces_exporter="none", metrics_exporter="none", set_global=False)
    second = configure(traces_exporter="none", metrics_exporter="none", set_global=False)
    assert second.tracer_provider is first.tracer_provider


def test_reconfiguring_switches_observed_calls_and_retires_the_old_pipeline() -> None:
    old, new = RecordingExporter(), RecordingExporter()
    configure(span_exporter=old, metrics_exporter="none", set_global=False)
    handler()
    configure(span_exporter=new, metrics_exporter="none", set_global=False, service_name="second")
    handler()
    force_flush()
    assert [s.name for s in old.spans] == ["chat m"]  # flushed on retirement
    assert old.shutdowns == 1
    assert [s.resource.attributes["service.name"] for s in new.spans] == ["second"]


def test_shutdown_flushes_and_falls_back_to_the_global_providers() -> None:
    exporter = RecordingExporter()
    configure(span_exporter=exporter, metrics_exporter="none", set_global=False)
    handler()
    shutdown()
    assert len(exporter.spans) == 1 and exporter.shutdowns == 1
    assert handler() == "ok"  # still works, now through the (no-op) global provider
    assert len(exporter.spans) == 1


def test_flush_on_return_on_serverless() -> None:
    exporter = RecordingExporter()
    configure(
        span_exporter=exporter, metrics_exporter="none", runtime="serverless", set_global=False
    )
    handler()
    # Batched spans were exported before the call returned: a frozen sandbox loses nothing.
    assert len(exporter.spans) == 1


def test_no_flush_on_return_by_default_elsewhere() -> None:
    exporter = RecordingExporter()
    config = configure(
        span_exporter=exporter, metrics_exporter="none", runtime="container", set_global=False
    )
    handler()
    assert exporter.spans == []  # still queued in the batch processor
    assert config.tracer_provider is not None
    config.tracer_provider.force_flush()
    assert len(exporter.spans) == 1


@pytest.mark.timeout(60)
def test_flush_on_return_is_bounded_by_the_timeout() -> None:
    """A stuck exporter must not hold the handler: it returns while the export still hangs."""
    release = threading.Event()
    exporter = RecordingExporter(block=release)
    configure(
        span_exporter=exporter,
        metrics_exporter="none",
        flush_on_return=True,
        flush_timeout=0.2,
        set_global=False,
    )
    try:
        assert handler() == "ok"
        assert exporter.spans == []  # the export is still blocked
    finally:
        release.set()


def test_sdk_disabled_builds_nothing() -> None:
    config = configure(sdk_disabled=True)
    assert config.tracer_provider is None
    assert handler() == "ok"


def test_global_providers_are_set_once_and_never_replaced() -> None:
    script = """
from opentelemetry import trace, metrics
from opentelemetry.sdk.trace import TracerProvider
from infermeter.agent import configure
config = configure(traces_exporter="none", metrics_exporter="none")
print(trace.get_tracer_provider() is config.tracer_provider,
      metrics.get_meter_provider() is config.meter_provider)
"""
    script_app_first = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
app = TracerProvider()
trace.set_tracer_provider(app)
from infermeter.agent import configure
config = configure(traces_exporter="none", metrics_exporter="none")
print(trace.get_tracer_provider() is app, config.tracer_provider is not app)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    for code in (script, script_app_first):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        assert out.stdout.split() == ["True", "True"], out.stderr
        assert "Overriding of current" not in out.stderr


def test_settings_table_feeds_cli_flags_and_docs() -> None:
    for setting in SETTINGS:
        assert setting.env.startswith(("OTEL_", "INFERMETER_")), setting.env
    table = settings_table_markdown(SETTINGS)
    for setting in SETTINGS:
        assert f"`{setting.env}`" in table
    parser = argparse.ArgumentParser()
    add_arguments(parser, SETTINGS)
    args = parser.parse_args(
        ["--capture-embeddings", "0.2", "--no-flush-on-return", "--runtime", "container"]
    )
    explicit = {s.name: getattr(args, s.name) for s in SETTINGS}
    settings = resolve_settings(explicit, environ={})
    assert settings.capture_embeddings == 0.2
    assert settings.flush_on_return is False
    assert settings.runtime == "container"


def test_settings_table_renders_as_a_markdown_table() -> None:
    rows = settings_table_markdown(SETTINGS).splitlines()
    assert all(row.count("|") == 5 for row in rows), "a '|' inside a cell breaks the table"


def test_the_result_is_read_and_the_span_ended_off_the_callers_thread() -> None:
    """The caller's thread only starts the span and restores the context; reading the
    response (usage, model) and ending the span happen on infermeter's background thread."""
    readers: list[str] = []
    read = threading.Event()

    class Usage:
        completion_tokens = 3

        @property
        def prompt_tokens(self) -> int:
            readers.append(threading.current_thread().name)
            read.set()
            return 7

    response = argparse.Namespace(model="m-1", usage=Usage())

    @observe(operation="chat", model="m")
    def ask() -> object:
        return response

    exporter = RecordingExporter()
    config = configure(
        span_exporter=exporter, metrics_exporter="none", runtime="container", set_global=False
    )
    assert ask() is response
    # The background thread wakes at least every 0.1 s; 10 s only bounds a broken run.
    assert read.wait(10)
    assert readers == ["infermeter-metrics"]
    assert config.tracer_provider is not None
    config.tracer_provider.force_flush()
    [span] = exporter.spans
    assert (span.attributes or {})["gen_ai.usage.input_tokens"] == 7
    assert (span.attributes or {})["gen_ai.response.model"] == "m-1"


def test_without_an_sdk_calls_run_unobserved_until_the_application_installs_one() -> None:
    """API only: nothing can be recorded, so no attribute callable runs and no span is
    started; the call after the application installs its SDK provider is recorded (and is
    not the process's cold start: the first call was)."""
    script = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from infermeter import observe

asked = []

def tenant_of(request):
    asked.append(request)
    return request["tenant"]

@observe(tenant=tenant_of, model="gpt-4o-mini")
def handle(request):
    return {"answer": 42}

before = handle({"tenant": "acme"})
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
after = handle({"tenant": "globex"})
provider.force_flush()
spans = exporter.get_finished_spans()
print(json.dumps({
    "results": [before, after],
    "asked": [r["tenant"] for r in asked],
    "spans": [dict(s.attributes) for s in spans],
}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "INFERMETER_"))}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    seen = json.loads(out.stdout)
    assert seen["results"] == [{"answer": 42}, {"answer": 42}]
    assert seen["asked"] == ["globex"]
    assert len(seen["spans"]) == 1
    assert seen["spans"][0]["tenant.id"] == "globex"
    assert seen["spans"][0]["faas.coldstart"] is False


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("explicit", "env", "queue"),
    [
        (None, None, 8192),  # infermeter's default, four times the SDK's 2048
        (None, "1000", 1000),  # OTEL_BSP_MAX_QUEUE_SIZE, read by the SDK's own rules
        (3000, "1000", 3000),  # an explicit argument wins over the variable
    ],
)
def test_the_span_queue_holds_what_the_setting_says_while_exports_are_slow(
    monkeypatch: pytest.MonkeyPatch, explicit: int | None, env: str | None, queue: int
) -> None:
    """While the one export is stuck, ended spans wait in the BatchSpanProcessor's queue;
    beyond its size they are dropped. So of N spans ended meanwhile, at most the queue
    plus the one batch being exported (512, OTEL_BSP_MAX_EXPORT_BATCH_SIZE's default)
    arrive, and all of them when N fits in the queue."""
    if env is not None:
        monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", env)
    release = threading.Event()
    exporter = RecordingExporter(block=release)
    configure(
        span_exporter=exporter,
        metrics_exporter="none",
        span_queue_size=explicit,
        runtime="container",
        set_global=False,
    )
    calls = 5000  # more than the SDK's default queue, less than infermeter's
    try:
        for _ in range(calls):
            handler()
        from infermeter.agent._recorder import RECORDER

        RECORDER.drain()  # every call's span has been ended (and queued or dropped)
    finally:
        release.set()
    assert force_flush(timeout=60)
    if calls <= queue:
        assert len(exporter.spans) == calls
    else:
        assert queue <= len(exporter.spans) <= queue + 512
