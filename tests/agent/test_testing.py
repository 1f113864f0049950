"""The public test helpers: capture(), virtual_time(), advance(), now()."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from infermeter.agent import observe, testing


@observe(name="step")
def step() -> str:
    return "done"


def test_capture_collects_spans_and_metrics_and_restores_afterwards() -> None:
    with testing.capture() as outer:
        step()
        with testing.capture() as inner:
            step()
        step()
    assert len(outer.spans) == 2
    assert len(inner.spans) == 1
    outer.clear()
    assert outer.spans == []


def test_span_lookup_explains_what_it_found() -> None:
    with testing.capture() as cap:
        step()
        step()
    with pytest.raises(AssertionError, match=r"expected one span named 'step', found 2"):
        cap.span("step")
    with pytest.raises(AssertionError, match=r"span names: \['step'\]"):
        cap.span("missing")
    assert len(cap.spans_named("step")) == 2
    assert cap.attributes  # callable helper exists


def test_capture_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    with testing.capture() as cap:
        step()
    assert len(cap.spans) == 1
    assert "gen_ai.output.messages" not in (cap.spans[0].attributes or {})


def test_virtual_time_with_aware_datetimes() -> None:
    start = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    with testing.virtual_time(start) as clock:
        testing.advance(1.5)
        assert testing.now() == start.timestamp() + 1.5
        assert clock.ns == round(start.timestamp() * 1e9) + 1_500_000_000
    with (
        pytest.raises(ValueError, match="timezone-aware"),
        testing.virtual_time(datetime(2026, 1, 1)),
    ):
        pass
    with testing.virtual_time(0.0), pytest.raises(ValueError, match="cannot advance"):
        testing.advance(-1)


def test_advance_without_a_virtual_clock_sleeps() -> None:
    before = testing.now()
    testing.advance(0.001)
    assert testing.now() >= before


def test_importing_infermeter_stays_light() -> None:
    # The OpenTelemetry SDK too: an application that brings its own provider and never
    # calls configure() uses the API only.
    heavy = (
        "duckdb",
        "polars",
        "pandas",
        "numpy",
        "pyarrow",
        "evidently",
        "rich",
        "plotly",
        "grafana_client",
        "prometheus_client",
        "requests",
        "opentelemetry.sdk",
    )
    code = f"import sys, infermeter\nprint(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    assert out == "[]"


def test_telemetry_routes_blocks_to_separate_pipelines() -> None:
    from infermeter.agent import ConfigurationError
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    api_1 = testing.telemetry(
        span_exporter=first,
        metric_reader=InMemoryMetricReader(),
        service_name="chat-api",
        flush_on_return=True,
        resource_attributes={"service.instance.id": "sandbox-1"},
    )
    api_2 = testing.telemetry(
        span_exporter=second,
        metric_reader=InMemoryMetricReader(),
        service_name="chat-api",
        flush_on_return=True,
        resource_attributes={"service.instance.id": "sandbox-2"},
    )
    with api_1:
        step()
    with api_2:
        step()
        step()
    api_1.shutdown()
    api_2.shutdown()
    assert [s.resource.attributes["service.instance.id"] for s in first.get_finished_spans()] == [
        "sandbox-1"
    ]
    assert len(second.get_finished_spans()) == 2
    assert api_1.configuration.resource["service.name"] == "chat-api"
    with pytest.raises(ConfigurationError):
        testing.telemetry(capture_embeddings=7)
