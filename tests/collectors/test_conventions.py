"""Spans we did not write: every convention's names fill the typed columns (newest name
wins), entry spans from remote parents, throttles from 429s and rate-limit errors, TTFT
from events, the tenant from configured attributes, and /v1/metrics accepted."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from infermeter.collectors import ATTRIBUTE_MAP, SIGNAL_MAP, SPAN_COLUMNS, Collector
from infermeter.collectors._decode import decode_json
from infermeter.collectors._flatten import Flattened, Limits, flatten_request, to_arrow
from infermeter.collectors.testing import otlp_json, otlp_request, otlp_span

SERVER, CLIENT, INTERNAL = 2, 3, 1


def rows(flat: Flattened) -> list[dict[str, Any]]:
    spans, _ = to_arrow(flat)
    return list(spans.to_pylist())


def row(limits: Limits | None = None, **span: Any) -> dict[str, Any]:
    resource = span.pop("resource", None)
    flat = flatten_request(
        otlp_request([otlp_span(**span)], resource=resource), limits=limits or Limits()
    )
    (only,) = rows(flat)
    return only


def test_the_map_names_real_columns_and_each_attribute_once() -> None:
    columns = {name for name, _ in SPAN_COLUMNS}
    names = [name for mapping in ATTRIBUTE_MAP for name in mapping.sources]
    assert {m.column for m in ATTRIBUTE_MAP} <= columns
    assert len(names) == len(set(names))
    assert {s.signal for s in SIGNAL_MAP} >= {"http_status", "first_chunk_event"}


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        # GenAI semconv before 1.27 (OpenLLMetry 0.45)
        (
            {
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "llm.request.type": "chat",
                "gen_ai.usage.prompt_tokens": 1000,
                "gen_ai.usage.completion_tokens": 100,
                "gen_ai.usage.cache_read_input_tokens": 200,
                "llm.is_streaming": True,
            },
            {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "operation": "chat",
                "input_tokens": 1000,
                "output_tokens": 100,
                "cache_read_tokens": 200,
                "stream": True,
            },
        ),
        # OpenInference
        (
            {
                "llm.model_name": "gpt-4o-mini-2024-07-18",
                "llm.provider": "openai",
                "llm.token_count.prompt": 1000,
                "llm.token_count.completion": 100,
                "llm.token_count.prompt_details.cache_read": 300,
                "llm.token_count.completion_details.reasoning": 40,
                "openinference.span.kind": "LLM",
            },
            {
                "model": "gpt-4o-mini-2024-07-18",
                "provider": "openai",
                "input_tokens": 1000,
                "output_tokens": 100,
                "cache_read_tokens": 300,
                "reasoning_tokens": 40,
                "operation": "LLM",
            },
        ),
        # HTTP server span
        ({"http.route": "/v1/chat/{id}"}, {"endpoint": "/v1/chat/{id}"}),
    ],
)
def test_older_and_other_conventions_fill_typed_columns(
    attributes: dict[str, Any], expected: dict[str, Any]
) -> None:
    got = row(attributes=attributes)
    assert {column: got[column] for column in expected} == expected
    # Used sources leave the JSON; nothing else does.
    assert json.loads(got["attributes"]) == {}


def test_the_newest_name_wins_and_the_older_stays_in_json() -> None:
    got = row(
        attributes={
            "gen_ai.usage.prompt_tokens": 7,  # pre-1.27
            "llm.token_count.prompt": 9,  # OpenInference
            "gen_ai.usage.input_tokens": 5,  # current
            "gen_ai.system": "az.ai.openai",
            "gen_ai.provider.name": "azure.ai.openai",
        }
    )
    assert got["input_tokens"] == 5
    assert got["provider"] == "azure.ai.openai"
    assert json.loads(got["attributes"]) == {
        "gen_ai.usage.prompt_tokens": 7,
        "llm.token_count.prompt": 9,
        "gen_ai.system": "az.ai.openai",
    }
    # With the current name absent, the next newest present fills the column.
    older = row(attributes={"llm.token_count.prompt": 9, "gen_ai.usage.prompt_tokens": 7})
    assert older["input_tokens"] == 7


def test_a_span_with_a_remote_parent_is_an_entry_in_both_encodings() -> None:
    parent = bytes.fromhex("00000000000000a1")
    spans = [
        otlp_span("POST /chat", kind=SERVER, parent_span_id=parent, flags=0x300 | 0x01),
        otlp_span("local child", parent_span_id=parent, flags=0x100),  # known not remote
        otlp_span("old sdk", parent_span_id=parent),  # flags unknown: not an entry here
        otlp_span("root"),
    ]
    request = otlp_request(spans)
    expected = [True, False, False, True]
    assert [r["is_entry"] for r in rows(flatten_request(request))] == expected
    from_json = decode_json(json.dumps(otlp_json(request)).encode())
    assert [r["is_entry"] for r in rows(flatten_request(from_json))] == expected
    # infermeter.entry still decides when sent.
    explicit = row(parent_span_id=parent, flags=0x300, attributes={"infermeter.entry": False})
    assert explicit["is_entry"] is False


@pytest.mark.parametrize(
    "error_type",
    [
        "RateLimitError",
        "openai.RateLimitError",
        "<class 'openai.RateLimitError'>",
        "anthropic.RateLimitError",
        "botocore.errorfactory.ThrottlingException",
        "TooManyRequestsException",
        "google.api_core.exceptions.ResourceExhausted",
        "429",
    ],
)
def test_error_type_naming_a_rate_limit_is_a_throttle(error_type: str) -> None:
    assert row(attributes={"error.type": error_type})["throttled"] is True


@pytest.mark.parametrize("error_type", ["TimeoutError", "openai.APIConnectionError", "500"])
def test_other_errors_are_not_throttles(error_type: str) -> None:
    assert row(attributes={"error.type": error_type})["throttled"] is False


def test_http_429_on_client_and_server_spans_with_retry_after() -> None:
    client = row(
        kind=CLIENT,
        attributes={
            "http.response.status_code": 429,
            "http.response.header.retry-after": ["7"],
        },
    )
    assert client["throttled"] is True and client["retry_after_s"] == 7.0
    server = row(kind=SERVER, attributes={"http.status_code": 429})  # before semconv 1.23
    assert server["throttled"] is True and server["retry_after_s"] is None
    # An ASGI "http send" internal span repeats its server span's status: not a throttle.
    assert row(kind=INTERNAL, attributes={"http.status_code": 429})["throttled"] is False
    assert row(kind=CLIENT, attributes={"http.response.status_code": 503})["throttled"] is False
    # The decorator's own verdict is never overridden.
    explicit = row(
        kind=CLIENT,
        attributes={"http.response.status_code": 429, "infermeter.throttled": False},
    )
    assert explicit["throttled"] is False


def test_an_exception_event_naming_a_rate_limit_is_a_throttle() -> None:
    # OpenInference records errors only as exception events.
    got = row(
        status_code=2,
        events=[("exception", {"exception.type": "openai.RateLimitError"})],
    )
    assert got["throttled"] is True
    other = row(status_code=2, events=[("exception", {"exception.type": "ValueError"})])
    assert other["throttled"] is False


def test_ttft_from_the_first_chunk_event_and_openlit_only_for_streams() -> None:
    span = otlp_span("openai.chat", duration_ms=500)
    for offset_ms in (120, 80, 300):  # not in time order
        event = span.events.add()
        event.name = "gen_ai.content.completion.chunk"
        event.time_unix_nano = span.start_time_unix_nano + offset_ms * 1_000_000
    (got,) = rows(flatten_request(otlp_request([span])))
    assert got["ttft_ms"] == 80.0 and got["stream"] is True
    streamed = row(
        attributes={"gen_ai.request.stream": True, "gen_ai.server.time_to_first_token": 0.25}
    )
    assert streamed["ttft_ms"] == 250.0
    # OpenLIT writes the same attribute on unstreamed calls (the whole response time).
    whole = row(
        attributes={"gen_ai.request.stream": False, "gen_ai.server.time_to_first_token": 0.9}
    )
    assert whole["ttft_ms"] is None


def test_tenant_from_configured_attributes() -> None:
    default = Limits()
    traceloop = row(default, attributes={"traceloop.association.properties.tenant_id": "acme"})
    assert traceloop["tenant"] == "acme"
    metadata = row(default, attributes={"metadata": json.dumps({"tenant": "globex"})})
    assert metadata["tenant"] == "globex"
    # tenant.id (span, then resource) wins over every configured attribute.
    both = row(
        default,
        attributes={"traceloop.association.properties.tenant_id": "acme"},
        resource={"tenant.id": "initech"},
    )
    assert both["tenant"] == "initech"
    # A configured list replaces the default one, in order.
    custom = Limits(tenant_attributes=("user.id", "session.id"))
    got = row(custom, attributes={"session.id": "s1", "user.id": "u1", "tenant_id": "t"})
    assert got["tenant"] == "u1"
    assert row(custom, attributes={"tenant_id": "t"})["tenant"] is None
    # The source attribute stays in the JSON: it may mean more than the tenant.
    assert json.loads(got["attributes"])["user.id"] == "u1"


def _post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _metrics_request() -> Any:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    request = ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().scope_metrics.add()
    tokens = scope.metrics.add(name="gen_ai.client.token.usage")
    tokens.histogram.data_points.add(count=2, sum=1100.0)
    tokens.histogram.data_points.add(count=1, sum=50.0)
    cost = scope.metrics.add(name="gen_ai.usage.cost")
    cost.gauge.data_points.add(as_double=0.00021)
    return request


def test_otlp_metrics_are_accepted_and_dropped_with_a_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceResponse,
    )

    request = _metrics_request()
    caplog.set_level(logging.INFO, logger="infermeter.collectors")
    with Collector(tmp_path / "s.duckdb", port=0) as collector:
        url = collector.url + "/v1/metrics"
        status, body = _post(url, request.SerializeToString(), "application/x-protobuf")
        assert status == 200
        ExportMetricsServiceResponse.FromString(body)  # the spec's response message
        status, body = _post(url, json.dumps(MessageToDict(request)).encode(), "application/json")
        assert (status, json.loads(body)) == (200, {})
        assert _post(url, b"\x0a\xff", "application/x-protobuf")[0] == 400
        assert _post(url, b"[1]", "application/json")[0] == 400
    dropped = [r.getMessage() for r in caplog.records if "metric data point" in r.getMessage()]
    assert len(dropped) == 2
    assert all("dropped 3 metric data point(s) of 2 metric(s)" in m for m in dropped)


def test_tenant_attributes_setting_reaches_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infermeter.collectors import open_reader

    monkeypatch.setenv("INFERMETER_TENANT_ATTRIBUTES", "user.id")
    store = tmp_path / "s.duckdb"
    request = otlp_request([otlp_span(attributes={"user.id": "u-7"})])
    with Collector(store, port=0) as collector:
        assert collector.settings["tenant_attributes"] == ("user.id",)
        status, _ = _post(
            collector.url + "/v1/traces", request.SerializeToString(), "application/x-protobuf"
        )
        assert status == 200
    con = open_reader(store)
    try:
        assert con.execute("SELECT tenant FROM spans").fetchall() == [("u-7",)]
    finally:
        con.close()
