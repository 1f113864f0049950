"""The real OpenTelemetry SDK exporting to a real ``infermeter collect`` process:
every span and value arrives; bad input gets a clear 4xx and the server keeps serving."""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from google.rpc.status_pb2 import Status
from infermeter.agent import semconv as sc
from infermeter.collectors._sidecar import StorePaths
from infermeter.collectors.testing import (
    CollectorProcess,
    collector_command,
    collector_process,
    otlp_request,
    otlp_span,
    send_otlp,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import StatusCode

SdkFactory = Callable[..., TracerProvider]

pytestmark = pytest.mark.slow


def _store_rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("gzip_body", [False, True], ids=["protobuf", "protobuf+gzip"])
def test_sdk_spans_arrive_with_every_value(
    tmp_path: Path, sdk: SdkFactory, gzip_body: bool
) -> None:
    store = tmp_path / "store.duckdb"
    expected: dict[str, dict[str, Any]] = {}
    with collector_process(store) as proc:
        provider = sdk(
            proc.traces_endpoint,
            gzip=gzip_body,
            resource={
                sc.SERVICE_NAME: "chat",
                sc.CLOUD_PROVIDER: "aws",
                sc.CLOUD_PLATFORM: "aws_lambda",
                sc.CLOUD_REGION: "eu-west-1",
                sc.FAAS_MAX_MEMORY: 512 * 1024 * 1024,
            },
        )
        tracer = provider.get_tracer("app", "1.2.3")
        for i in range(1500):
            attributes = {
                sc.TENANT_ID: f"t{i % 5}",
                sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                sc.GEN_AI_USAGE_INPUT_TOKENS: i,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: 2 * i,
                sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: i / 1000,
                sc.FAAS_COLDSTART: i % 100 == 0,
                sc.INFERMETER_RETRIES: i % 3,
                "app.seq": i,
            }
            with tracer.start_as_current_span("request", attributes=attributes) as parent:
                if i % 10 == 0:
                    parent.add_event(
                        sc.EMBEDDING_EVENT,
                        {sc.EMBEDDING_KIND: "query", sc.EMBEDDING_VECTOR: [float(i), 0.5]},
                    )
                with tracer.start_as_current_span("llm call") as child:
                    if i % 7 == 0:
                        child.set_status(StatusCode.ERROR, "upstream 500")
                        child.set_attribute(sc.ERROR_TYPE, "InternalServerError")
            ctx, child_ctx = parent.get_span_context(), child.get_span_context()
            expected[f"{ctx.span_id:016x}"] = {
                "i": i,
                "trace": f"{ctx.trace_id:032x}",
                "child": f"{child_ctx.span_id:016x}",
            }
        assert provider.force_flush(60_000)
        assert proc.stop() == 0, proc.log_text()

    con = duckdb.connect(str(store), read_only=True)
    parents = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT span_id, trace_id, tenant, input_tokens, output_tokens, ttft_ms, cold_start,"
            " attempt, is_entry, service_name, region, memory_mb, platform, scope_name,"
            " scope_version, attributes FROM spans WHERE name = 'request'"
        ).fetchall()
    }
    children = dict(
        con.execute(
            "SELECT span_id, (parent_span_id, trace_id, status_code, error_type, is_entry)"
            " FROM spans WHERE name = 'llm call'"
        ).fetchall()
    )
    embeddings = con.execute("SELECT span_id, tenant, vector FROM embeddings").fetchall()
    con.close()

    assert len(parents) == len(children) == 1500
    for span_id, want in expected.items():
        i = want["i"]
        (
            trace,
            tenant,
            tin,
            tout,
            ttft,
            cold,
            attempt,
            entry,
            svc,
            region,
            mb,
            platform,
            scope,
            scope_version,
            attributes,
        ) = parents[span_id]
        assert trace == want["trace"]
        assert (tenant, tin, tout, cold, attempt, entry) == (
            f"t{i % 5}",
            i,
            2 * i,
            i % 100 == 0,
            1 + i % 3,
            True,
        )
        assert ttft == pytest.approx(i)
        assert (svc, region, mb, platform) == ("chat", "eu-west-1", 512.0, "aws_lambda")
        assert (scope, scope_version) == ("app", "1.2.3")
        assert json.loads(attributes) == {"app.seq": i}
        child = children[want["child"]]
        assert child[:2] == (span_id, trace)
        assert child[2:4] == (("ERROR", "InternalServerError") if i % 7 == 0 else ("UNSET", None))
        assert child[4] is False
    assert len(embeddings) == 150
    by_span = {span_id: (tenant, vector) for span_id, tenant, vector in embeddings}
    for span_id, want in expected.items():
        if want["i"] % 10 == 0:
            assert by_span[span_id] == (f"t{want['i'] % 5}", [float(want["i"]), 0.5])


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """One collector with small limits for the bad-input tests."""
    store = tmp_path_factory.mktemp("receiver") / "store.duckdb"
    with collector_process(
        store, max_body_bytes=200_000, max_decompressed_bytes=400_000, flush_interval=0.1
    ) as proc:
        yield proc


def test_json_bodies_get_json_answers_with_partial_success(shared: CollectorProcess) -> None:
    good = otlp_request([otlp_span(attributes={"k": "v"})])
    response = send_otlp(shared.traces_endpoint, good, as_json=True)
    assert (response.status, response.headers["content-type"], response.json()) == (
        200,
        "application/json",
        {},
    )
    mixed = otlp_request([otlp_span(), otlp_span(trace_id=bytes(16))])
    response = send_otlp(shared.traces_endpoint, mixed, as_json=True, compress=True)
    assert response.status == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "trace_id" in partial["errorMessage"]


def test_protobuf_partial_success_is_an_export_response(shared: CollectorProcess) -> None:
    mixed = otlp_request([otlp_span(), otlp_span(span_id=b"\x01"), otlp_span(duration_ms=-1)])
    response = send_otlp(shared.traces_endpoint, mixed)
    assert response.status == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    parsed = ExportTraceServiceResponse.FromString(response.body)
    assert parsed.partial_success.rejected_spans == 2
    assert "span_id" in parsed.partial_success.error_message
    full = send_otlp(shared.traces_endpoint, otlp_request([otlp_span()]))
    assert ExportTraceServiceResponse.FromString(full.body) == ExportTraceServiceResponse()


def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(shared: CollectorProcess) -> None:
    endpoint = shared.traces_endpoint
    cases = [
        (b"\x0a\xff\xff\xff\xff\x0f", {}, 400, "malformed protobuf"),
        (b'{"resourceSpans": [', {"Content-Type": "application/json"}, 400, "malformed JSON"),
        (b"hello", {"Content-Type": "text/plain"}, 415, "Content-Type"),
        (b"x", {"Content-Encoding": "br"}, 415, "Content-Encoding"),
        (b"x" * 300_000, {}, 413, "limit"),
        (gzip.compress(bytes(5_000_000)), {"Content-Encoding": "gzip"}, 413, "inflates"),
        (b"\x1f\x8b garbage", {"Content-Encoding": "gzip"}, 400, "gzip"),
    ]
    for body, headers, status, fragment in cases:
        response = send_otlp(endpoint, body, headers=headers)
        assert response.status == status, (headers, response.body)
        ctype = headers.get("Content-Type", "application/x-protobuf")
        if ctype == "application/x-protobuf":
            assert fragment in Status.FromString(response.body).message
        else:
            assert fragment in response.json()["message"]
    # An unknown path is 404; /v1/metrics is served (a trace body there is malformed: 400).
    assert send_otlp(shared.url + "/v1/nothing", otlp_request([otlp_span()])).status == 404
    assert send_otlp(shared.url + "/v1/metrics", otlp_request([otlp_span()])).status == 400
    assert send_otlp(endpoint, otlp_request([otlp_span()])).status == 200
    health = json.loads(_get(shared.url + "/healthz"))
    assert health["status"] == "ok"
    for status in ("400", "404", "413", "415"):
        assert health["responses"][status] >= 1


def _get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        body: bytes = response.read()
    return body


def test_chunked_bodies_are_accepted(shared: CollectorProcess) -> None:
    import http.client

    body = otlp_request([otlp_span(), otlp_span()]).SerializeToString()
    conn = http.client.HTTPConnection("127.0.0.1", int(shared.url.rsplit(":", 1)[1]), timeout=30)
    conn.request(
        "POST",
        "/v1/traces",
        body=iter([body[:10], body[10:]]),
        headers={"Content-Type": "application/x-protobuf"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    assert response.status == 200, response.read()
    conn.close()


def test_port_zero_is_discoverable_and_the_runtime_file_is_private(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    paths = StorePaths.of(store)
    with collector_process(store) as proc:
        runtime = json.loads(paths.runtime.read_text())
        assert runtime["url"] == proc.url and runtime["pid"] == proc.pid
        assert stat.S_IMODE(paths.runtime.stat().st_mode) == 0o600
        time.sleep(0.2)
        match = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", proc.log_text())
        assert match and match.group(1) == proc.url and int(match.group(2)) > 0
        assert proc.stop() == 0
    assert not paths.runtime.exists()


def test_a_second_collector_on_the_same_store_fails_fast(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    with collector_process(store) as proc:
        second = subprocess.run(
            collector_command(store, port=0), capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert "being written by a running `infermeter collect`" in second.stderr
        assert f"pid {proc.pid}" in second.stderr
        assert "Traceback" not in second.stderr


def test_sigterm_stores_everything_acknowledged(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    with collector_process(store, flush_interval=600, batch_spans=1_000_000) as proc:
        for _ in range(5):
            assert (
                send_otlp(
                    proc.traces_endpoint, otlp_request([otlp_span() for _ in range(200)])
                ).status
                == 200
            )
        assert proc.stop() == 0
    assert _store_rows(store, "SELECT count(*) FROM spans") == [(1000,)]


def test_connections_beyond_the_limit_get_503(tmp_path: Path) -> None:
    with collector_process(tmp_path / "s.duckdb", max_connections=2) as proc:
        port = int(proc.url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            # Both are sending a body (connections idle or still sending headers would
            # be evicted for the new one instead).
            for sock in idle:
                sock.sendall(b"POST /v1/traces HTTP/1.1\r\nContent-Length: 100\r\n\r\nx")
            time.sleep(0.3)  # both are accepted and tracked
            extra = socket.create_connection(("127.0.0.1", port))
            extra.settimeout(10)
            answer = extra.recv(200)
            extra.close()
            assert answer.startswith(b"HTTP/1.1 503")
            assert b"Retry-After: 1" in answer
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.3)
        assert send_otlp(proc.traces_endpoint, otlp_request([otlp_span()])).status == 200


def test_invalid_settings_fail_before_listening(tmp_path: Path) -> None:
    env = {**os.environ, "INFERMETER_COLLECTOR_MAX_QUEUE_SPANS": "lots"}
    result = subprocess.run(
        collector_command(tmp_path / "s.duckdb", port=0),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "INFERMETER_COLLECTOR_MAX_QUEUE_SPANS='lots'" in result.stderr


def test_flush_needs_the_control_token_and_stores_everything(shared: CollectorProcess) -> None:
    assert send_otlp(shared.url + "/v1/flush", b"").status == 401
    assert send_otlp(shared.traces_endpoint, otlp_request([otlp_span()])).status == 200
    flushed = send_otlp(shared.url + "/v1/flush", b"", token=shared.control_token)
    assert flushed.status == 200
    health = json.loads(_get(shared.url + "/healthz"))
    assert flushed.json()["stored_spans"] == health["stored_spans"] == health["accepted_spans"]
    assert health["queued_spans"] == 0
