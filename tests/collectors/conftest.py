"""Fixtures for the collector tests: the real OpenTelemetry SDK as the client."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

SdkFactory = Callable[..., TracerProvider]


@pytest.fixture
def sdk() -> Iterator[SdkFactory]:
    """Builds TracerProviders exporting with the real ``OTLPSpanExporter`` (HTTP,
    protobuf) through a ``BatchSpanProcessor``; all are shut down after the test."""
    made: list[TracerProvider] = []

    def make(
        endpoint: str,
        *,
        resource: Mapping[str, Any] | None = None,
        gzip: bool = False,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        batch: int = 512,
    ) -> TracerProvider:
        exporter = OTLPSpanExporter(
            endpoint=endpoint,
            compression=Compression.Gzip if gzip else Compression.NoCompression,
            headers=dict(headers or {}),
            timeout=timeout,
        )
        provider = TracerProvider(resource=Resource.create(dict(resource or {})))
        # A queue big enough that the SDK itself never drops: losses would be ours.
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=200_000,
                max_export_batch_size=batch,
                schedule_delay_millis=50,
            )
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.shutdown()
