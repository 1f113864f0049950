"""Spans and metrics through the real OTLP/HTTP exporters to a local protobuf-decoding server.

Also runs the README's five-line example, unchanged, in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from infermeter.agent import annotate, observe, testing
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

import infermeter

# The README's example, verbatim (README.md shows it after the marker below;
# test_readme_shows_this_example keeps the two identical).
README_EXAMPLE = """\
import infermeter

infermeter.configure(service_name="support-bot")  # OTLP/HTTP to the local collector, 127.0.0.1:4318


@infermeter.observe(
    operation="chat",
    provider="openai",
    model="gpt-4o-mini",
    prompt_name="answer",
    prompt_version="v3",
    endpoint="/answer",
    tenant=lambda req: req["tenant"],
)
def answer(req):
    return openai_client.chat.completions.create(model="gpt-4o-mini", messages=req["messages"])
"""  # verbatim README text
README_MARKER = "<!-- infermeter:agent-example -->"

# The span contract attributes a plain chat call carries.
CONTRACT = {
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.prompt.name",
    "gen_ai.prompt.version",
    "tenant.id",
    "infermeter.runtime",
    "infermeter.endpoint",
    "infermeter.entry",
    "faas.coldstart",
    "infermeter.init_duration",
    "infermeter.retries",
}


def plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(plain(item) for item in value.array_value.values)
    return getattr(value, kind) if kind else None


def as_dict(attributes: Any) -> dict[str, Any]:
    return {item.key: plain(item.value) for item in attributes if isinstance(item, KeyValue)}


class Collector:
    """A minimal OTLP/HTTP receiver: decodes protobuf bodies, keeps them with headers."""

    def __init__(self) -> None:
        self.traces: list[ExportTraceServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.received = threading.Condition()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                response: Any
                with collector.received:
                    collector.headers.append({k.lower(): v for k, v in self.headers.items()})
                    if self.path == "/v1/traces":
                        collector.traces.append(ExportTraceServiceRequest.FromString(body))
                        response = ExportTraceServiceResponse()
                    elif self.path == "/v1/metrics":
                        collector.metrics.append(ExportMetricsServiceRequest.FromString(body))
                        response = ExportMetricsServiceResponse()
                    else:
                        self.send_error(404)
                        return
                    collector.received.notify_all()
                payload = response.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def spans(self) -> list[tuple[Any, dict[str, Any], dict[str, Any]]]:
        """(span, attributes, resource attributes) for every span received."""
        found = []
        for request in self.traces:
            for resource_spans in request.resource_spans:
                resource = as_dict(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append((span, as_dict(span.attributes), resource))
        return found

    def metric_names(self) -> dict[str, Any]:
        found = {}
        for request in self.metrics:
            for resource_metrics in request.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        found[metric.name] = metric
        return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(10)


class FakeCompletions:
    def create(self, **kwargs: Any) -> SimpleNamespace:
        return SimpleNamespace(
            id="chatcmpl-1",
            model="gpt-4o-mini-2024-07-18",
            choices=[
                SimpleNamespace(
                    message=SimpleNamespace(role="assistant", content="Hi"), finish_reason="stop"
                )
            ],
            usage=SimpleNamespace(
                prompt_tokens=1200,
                completion_tokens=80,
                prompt_tokens_details=SimpleNamespace(cached_tokens=1024),
                completion_tokens_details=SimpleNamespace(reasoning_tokens=16),
            ),
        )


def test_spans_and_metrics_arrive_through_the_real_exporters(collector: Collector) -> None:
    @observe(
        operation="chat",
        provider="openai",
        model="gpt-4o-mini",
        tenant="acme",
        prompt_name="answer",
        prompt_version="v3",
        endpoint="/answer",
    )
    def answer() -> SimpleNamespace:
        annotate(embeddings=([0.5, 0.25, 0.125], "query"))
        return FakeCompletions().create()

    testing.reset_cold_start()
    infermeter.configure(
        endpoint=collector.url,
        service_name="otlp-test",
        headers={"x-ingest-token": "tenant-token"},
        capture_embeddings=1.0,
        resource_attributes={"deployment.environment.name": "test"},
        set_global=False,
    )
    answer()
    infermeter.agent.shutdown(timeout=30)

    [(span, attributes, resource)] = collector.spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind == span.SPAN_KIND_CLIENT
    assert set(attributes) >= CONTRACT
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 16
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["tenant.id"] == "acme"
    assert attributes["infermeter.entry"] is True
    assert resource["service.name"] == "otlp-test"
    assert resource["deployment.environment.name"] == "test"
    assert resource["service.instance.id"]
    [event] = span.events
    assert event.name == "infermeter.embedding"
    assert as_dict(event.attributes) == {
        "infermeter.embedding.kind": "query",
        "infermeter.embedding.vector": (0.5, 0.25, 0.125),
    }
    assert all(h.get("x-ingest-token") == "tenant-token" for h in collector.headers)
    assert all(h["content-type"] == "application/x-protobuf" for h in collector.headers)

    metrics = collector.metric_names()
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    assert list(duration.histogram.data_points[0].explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    tokens = metrics["gen_ai.client.token.usage"].histogram.data_points
    assert sorted((as_dict(p.attributes)["gen_ai.token.type"], p.sum) for p in tokens) == [
        ("input", 1200.0),
        ("output", 80.0),
    ]
    assert "faas.coldstarts" in metrics and "faas.init_duration" in metrics


def test_lambda_spans_are_flushed_before_the_handler_returns(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "answer-fn")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    @observe(operation="chat", model="m")
    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        return {"statusCode": 200}

    infermeter.configure(endpoint=collector.url, flush_timeout=30, set_global=False)
    handler({"requestContext": {}}, SimpleNamespace(aws_request_id="req-1"))
    # No shutdown, no waiting: the span is already at the collector when the handler returns.
    [(_, attributes, resource)] = collector.spans()
    assert attributes["faas.invocation_id"] == "req-1"
    assert attributes["faas.trigger"] == "http"
    assert attributes["infermeter.runtime"] == "serverless"
    assert resource["cloud.platform"] == "aws_lambda"
    assert resource["faas.max_memory"] == 2048 * 1024 * 1024
    assert resource["service.name"] == "answer-fn"
    assert "gen_ai.client.operation.duration" in collector.metric_names()


def test_the_readme_example_produces_every_contract_attribute(collector: Collector) -> None:
    program = (
        textwrap.dedent("""
        from types import SimpleNamespace as _NS
        class _Completions:
            def create(self, **kwargs):
                return _NS(model="gpt-4o-mini-2024-07-18", usage=_NS(
                    prompt_tokens=1200, completion_tokens=80,
                    prompt_tokens_details=_NS(cached_tokens=1024),
                    completion_tokens_details=_NS(reasoning_tokens=16)))
        openai_client = _NS(chat=_NS(completions=_Completions()))
    """)
        + README_EXAMPLE
        + textwrap.dedent("""
        answer({"tenant": "acme", "messages": [{"role": "user", "content": "Hi"}]})
        infermeter.agent.shutdown()
    """)
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "INFERMETER_", "AWS_", "K_", "KUBERNETES_"))
    }
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.url
    result = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    [(span, attributes, resource)] = collector.spans()
    assert set(attributes) >= CONTRACT, CONTRACT - set(attributes)
    assert span.name == "chat gpt-4o-mini"
    assert attributes["tenant.id"] == "acme"
    assert attributes["gen_ai.prompt.version"] == "v3"
    assert resource["service.name"] == "support-bot"
    assert {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "faas.coldstarts",
        "faas.init_duration",
    } <= set(collector.metric_names())


def test_readme_shows_this_example() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert README_MARKER in readme, "README.md lost the decorator's example"
    after = readme.split(README_MARKER, 1)[1]
    block = after.split("```python\n", 1)[1].split("```", 1)[0]
    assert block == README_EXAMPLE
