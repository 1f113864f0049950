"""Every emitter's spans give the collector's numbers on ClickHouse too.

Recorded exports of real instrumentations (``tests/interop/recordings``: the official
openai-v2, OpenLLMetry/Traceloop before and after semconv 1.27, OpenInference, OpenLIT, a
FastAPI server continuing an upstream trace) and spans shaped like Langfuse, Hugging Face
TGI/TEI and Triton write them, stored both ways: through the collector into DuckDB, and as
the OpenTelemetry Collector's clickhouseexporter writes ``otel_traces`` rows (shuffled,
in blocks that split traces) read through ``infermeter_spans``. The facts the collector
derives in code (throttles from exception events, TTFT and the stream flag from chunk
events, OpenLIT's stream TTFT, model-server timings, the tenant from configured
attributes) must come out the same, and so must ``infermeter metrics``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("chdb")
pytest.importorskip("clickhouse_connect")

from infermeter.analytics import Deployments, load_prices, request_table
from infermeter.analytics import open as analytics_open
from infermeter.collectors import Collector, open_reader, parse_store
from infermeter.collectors._clickhouse_otel import (
    insert_otel_logs,
    insert_otel_traces,
    otel_logs_arrow,
    otel_traces_arrow,
)
from infermeter.collectors._clickhouse_schema import (
    OTEL_LOGS_DDL,
    OTEL_TRACES_DDL,
    clickhouse_init,
    clickhouse_view_settings,
)
from infermeter.collectors._conventions import DEFAULT_TENANT_ATTRIBUTES
from infermeter.collectors._decode import decode_protobuf
from infermeter.collectors._flatten import Limits, flatten_request, to_arrow
from infermeter.collectors._logs import decode_logs_protobuf, events_to_arrow, flatten_logs
from infermeter.collectors._store import StoreWriter
from infermeter.collectors.testing import otlp_request, otlp_span, send_otlp
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from infermeter import main

RECORDINGS = Path(__file__).parents[1] / "interop" / "recordings"
EMITTERS = ("openai-v2", "traceloop", "traceloop-0.45", "openinference", "openlit", "fastapi")
SERVER, CLIENT, INTERNAL = 2, 3, 1
ERROR = 2
START = datetime(2026, 11, 16, 9)
# The defaults, then Langfuse's trace metadata (a JSON object in one attribute when the
# SDK serialises it whole) and its user id.
TENANT_ATTRIBUTES = (*DEFAULT_TENANT_ATTRIBUTES, "langfuse.trace.metadata.tenant_id", "user.id")


def _recorded(name: str) -> list[ExportTraceServiceRequest]:
    document = json.loads((RECORDINGS / f"{name}.json").read_text())
    return [
        decode_protobuf(base64.b64decode(export["body_base64"]))
        for export in document["exports"]
        if export["path"] == "/v1/traces"
    ]


def _ms(n: float) -> int:
    return int(n * 1_000_000)


def _event(span: Any, name: str, offset_ms: float, **attributes: Any) -> None:
    event = span.events.add()
    event.name = name
    event.time_unix_nano = span.start_time_unix_nano + _ms(offset_ms)
    for key, value in attributes.items():
        kv = event.attributes.add()
        kv.key = key
        kv.value.string_value = value


def _built() -> list[ExportTraceServiceRequest]:
    """Spans of emitters without a recording, as their own code writes them."""
    at = START
    # OpenLLMetry: one event per streamed chunk; the first (80 ms) is the TTFT.
    chunks = otlp_span(
        "openai.chat",
        start=at,
        duration_ms=500,
        kind=CLIENT,
        attributes={
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
            "traceloop.association.properties.tenant_id": "acme",
        },
    )
    for offset in (120, 80, 300):
        _event(chunks, "gen_ai.content.completion.chunk", offset)
    link = chunks.links.add()  # an agent step linking the turn that started it
    link.trace_id, link.span_id = bytes(range(1, 17)), bytes(range(1, 9))
    kv = link.attributes.add()
    kv.key, kv.value.string_value = "link.kind", "caused_by"
    # An explicit "not streamed" wins over the events; the TTFT still comes from them.
    flagged = otlp_span(
        "openai.chat",
        start=at + timedelta(seconds=1),
        duration_ms=400,
        attributes={
            "gen_ai.request.model": "gpt-4o-mini",
            "llm.is_streaming": False,
            "gen_ai.usage.input_tokens": 10,
            "tenant_id": "acme",
        },
    )
    _event(flagged, "First Token Stream Event", 45)
    # A first chunk before the span start (clock skew) is no TTFT, still a stream.
    skewed = otlp_span(
        "ChatCompletion",
        start=at + timedelta(seconds=2),
        duration_ms=300,
        attributes={"llm.model_name": "gpt-4o-mini", "metadata": json.dumps({"tenant": "acme"})},
    )
    _event(skewed, "llm.content.completion.chunk", -5)
    # OpenInference: errors only as exception events.
    limited = otlp_span(
        "ChatCompletion",
        start=at + timedelta(seconds=3),
        status_code=ERROR,
        attributes={"llm.model_name": "gpt-4o-mini", "metadata": '{"tenant": "globex"}'},
    )
    _event(limited, "exception", 1, **{"exception.type": "openai.RateLimitError"})
    other_error = otlp_span(
        "ChatCompletion",
        start=at + timedelta(seconds=4),
        status_code=ERROR,
        attributes={"llm.model_name": "gpt-4o-mini", "metadata": '{"tenant": "globex"}'},
    )
    _event(other_error, "exception", 1, **{"exception.type": "ValueError"})
    # error.type decides before any exception event.
    decided = otlp_span(
        "chat",
        start=at + timedelta(seconds=5),
        status_code=ERROR,
        attributes={
            "gen_ai.request.model": "gpt-4o-mini",
            "error.type": "TimeoutError",
            "tenant_id": "globex",
        },
    )
    _event(decided, "exception", 1, **{"exception.type": "<class 'openai.RateLimitError'>"})
    # OpenLIT: the server TTFT (s) counts for streams only.
    openlit_stream = otlp_span(
        "chat gpt-4o-mini",
        start=at + timedelta(seconds=6),
        duration_ms=900,
        attributes={
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.stream": True,
            "gen_ai.server.time_to_first_token": 0.25,
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
            "tenant_id": 42,  # a number names a tenant too
        },
    )
    openlit_whole = otlp_span(
        "chat gpt-4o-mini",
        start=at + timedelta(seconds=7),
        duration_ms=900,
        attributes={
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.stream": False,
            "gen_ai.server.time_to_first_token": 0.9,
            "tenant_id": 42,
        },
    )
    # Langfuse (Python SDK v3): a generation; the tenant in trace metadata, else user.id.
    langfuse = otlp_span(
        "generation",
        start=at + timedelta(seconds=8),
        attributes={
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": "gpt-4o-mini",
            "gen_ai.request.model": "gpt-4o-mini",
            "langfuse.observation.usage_details": json.dumps({"input": 7, "output": 3}),
            "langfuse.trace.metadata": json.dumps({"tenant_id": "initech", "team": "a"}),
            "user.id": "u-1",
        },
    )
    langfuse_user = otlp_span(
        "generation",
        start=at + timedelta(seconds=9),
        attributes={
            "langfuse.observation.type": "generation",
            "gen_ai.request.model": "gpt-4o-mini",
            "tenant_id": True,  # a boolean names no tenant: the next attribute does
            "langfuse.trace.metadata": json.dumps({"tenant_id": None}),
            "user.id": "u-2",
        },
    )
    tgi = otlp_span(
        "generate",
        start=at + timedelta(seconds=10),
        duration_ms=1300,
        attributes={
            "inference_time": "1.2s",
            "queue_time": "30ms",
            "prompt_tokens": "120",
            "generated_tokens": "64",
            "seed": "None",
        },
    )
    tei = otlp_span(
        "embed",
        start=at + timedelta(seconds=11),
        attributes={"inference_time": "250µs", "queue_time": "4ms", "compute_tokens": 42},
    )
    # A model time from the typed attributes stays; the queue still comes from TGI.
    tgi_typed = otlp_span(
        "generate",
        start=at + timedelta(seconds=12),
        attributes={
            "gen_ai.latency.time_in_model_inference": 0.5,
            "inference_time": "1ms",
            "queue_time": "2.5ms",
            "compute_tokens": 5,
            "prompt_tokens": 6,
        },
    )
    not_tgi = otlp_span(
        "step",
        start=at + timedelta(seconds=13),
        attributes={"inference_time": "fast", "queue_time": "3ms", "generated_tokens": 9},
    )
    triton = otlp_span(
        "simple",
        start=at + timedelta(seconds=14),
        attributes={
            "triton.model_name": "bge-small",
        },
    )
    for name, offset in (
        ("QUEUE_START", 1),
        ("COMPUTE_START", 4),
        ("COMPUTE_START", 6),  # the last of a name counts
        ("COMPUTE_END", 26),
    ):
        _event(triton, name, offset)
    triton_partial = otlp_span(
        "simple", start=at + timedelta(seconds=15), attributes={"triton.model_name": "bge-small"}
    )
    _event(triton_partial, "QUEUE_START", 2)
    _event(triton_partial, "COMPUTE_START", 5)
    return [
        otlp_request(
            [chunks, flagged, skewed, limited, other_error, decided],
            resource={"service.name": "agents"},
            scope="opentelemetry.instrumentation.openai",
        ),
        otlp_request([openlit_stream, openlit_whole], resource={"service.name": "openlit-app"}),
        otlp_request([langfuse, langfuse_user], resource={"service.name": "langfuse-app"}),
        otlp_request([tgi, tei, tgi_typed, not_tgi], resource={"service.name": "tgi"}),
        otlp_request([triton, triton_partial], resource={"service.name": "triton"}),
    ]


REQUESTS: list[ExportTraceServiceRequest] = [
    request for name in EMITTERS for request in _recorded(name)
] + _built()


@pytest.fixture(scope="module")
def duck_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("duck") / "spans.duckdb"
    writer = StoreWriter(path)
    try:
        for request in REQUESTS:  # one export at a time, as the collector receives them
            flat = flatten_request(request, limits=Limits(tenant_attributes=TENANT_ATTRIBUTES))
            writer.write(*to_arrow(flat))
    finally:
        writer.close()
    return path


@pytest.fixture(scope="module")
def duck(duck_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = open_reader(duck_path)
    yield con
    con.close()


@pytest.fixture(scope="module")
def chdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


def _clickhouse(root: Path, database: str, *, json_column: bool = False) -> str:
    admin = parse_store(f"chdb://{root}").client()
    admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    url = f"chdb://{root}?database={database}"
    client = parse_store(url).client()
    ddl = OTEL_TRACES_DDL
    if json_column:
        ddl = ddl.replace("Map(LowCardinality(String), String)", "JSON").split(
            "    INDEX idx_trace_id"
        )[0] + (
            "    INDEX idx_duration Duration TYPE minmax GRANULARITY 1\n) ENGINE = MergeTree()\n"
            "ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)"
        )
    client.command(ddl.format(table="otel_traces"))
    rows = otel_traces_arrow(REQUESTS, json_column=json_column)
    order = list(range(rows.num_rows))
    random.Random(7).shuffle(order)
    rows = rows.take(order)
    size = -(-rows.num_rows // 4)
    for offset in range(0, rows.num_rows, size):  # four blocks that split traces
        insert_otel_traces(client, rows.slice(offset, size))
    if json_column:  # the exporter's `json: true` logs table too, with evaluation records
        logs_ddl = OTEL_LOGS_DDL.format(table="otel_logs").replace(
            "Map(LowCardinality(String), String)", "JSON"
        )
        client.command(
            logs_ddl.split("    INDEX idx_trace_id")[0].rstrip().rstrip(",") + "\n)"
            " ENGINE = MergeTree() ORDER BY (ServiceName, TimestampTime, Timestamp)"
        )
        _, logs = _judged()
        insert_otel_logs(
            client, otel_logs_arrow(logs[:1], json_column=True, event_name_column=True)
        )
    clickhouse_init(client, tenant_attributes=TENANT_ATTRIBUTES)
    return url


def _remote_parent_spans() -> set[str]:
    """Spans whose OTLP flags say the parent is remote: the collector's entries that the
    exporter's table cannot show (it stores no span flags)."""
    return {
        span.span_id.hex()
        for request in REQUESTS
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
        if span.parent_span_id and span.flags & 0x300 == 0x300
    }


def _typeless(value: Any) -> Any:
    """Values as the exporter's Map keeps them (text): a string holding a JSON array or
    number reads back as that value (a known limit of the Map shape), 0.0 as 0."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return _integral(json.loads(value))
    if isinstance(value, dict):
        return {k: _typeless(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typeless(v) for v in value]
    return _integral(value)


def _request_spans(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(trace, entry span, service) of every request of the store."""
    prices = load_prices()
    table = request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    )
    rows = table.select("trace_id, span_id, service_name").order("trace_id, span_id").fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def _spans(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("SELECT * FROM spans ORDER BY span_id, trace_id").pl()


@pytest.mark.parametrize("json_column", [False, True], ids=["map", "json"])
def test_every_emitters_span_columns_are_the_collectors(
    duck: duckdb.DuckDBPyConnection, chdb_root: Path, json_column: bool
) -> None:
    url = _clickhouse(chdb_root, "json" if json_column else "map", json_column=json_column)
    con = open_reader(url)
    try:
        got = _spans(con)
        got_requests = _request_spans(con)
    finally:
        con.close()
    if json_column:  # C, D and E's evaluations and the chat message, from JSON columns
        con = open_reader(url)
        try:
            rows = con.sql("SELECT event_name, score_value, tenant FROM events").fetchall()
            judged = con.sql("SELECT name, score_value FROM evaluations ORDER BY time").fetchall()
        finally:
            con.close()
        assert len(rows) == 4
        assert judged == [("relevance", 0.9), ("user_feedback", -1.0), ("user_feedback", 1.0)]
    want = _spans(duck)
    # The same requests, each entered by the same span: the remote-parent server spans
    # are requests on ClickHouse too (their parent is in no span of their service).
    assert got_requests == _request_spans(duck)
    if not json_column:
        # Step 2 (request rows merged inside ClickHouse, the tenant read with init's
        # tenant attributes) gives every metric of the span path, emitter by emitter.
        by = ("tenant", "model", "service_name")
        with analytics_open(url, request_rows_after="never") as analysis:
            step1 = analysis.metrics(by=by)
        with analytics_open(url, request_rows_after="0") as analysis:
            step2 = analysis.metrics(by=by)
            assert analysis.request_rows is not None and analysis.request_rows.reads
        assert_frame_equal(step2, step1, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    assert _remote_parent_spans() <= {span for _, span, _ in got_requests}
    assert got.height == want.height > 60
    # Only the remote-parent spans differ in is_entry (no flags in otel_traces); analytics
    # find those requests anyway (test below).
    remote = _remote_parent_spans()
    assert remote  # the FastAPI recording continues an upstream traceparent
    differs = got.filter(pl.col("is_entry") != want["is_entry"])["span_id"].to_list()
    assert set(differs) == remote
    skip = ["is_entry", "events", "links", "attributes", "resource_attributes"]
    assert want["events"].drop_nulls().len() > 10 and want["links"].drop_nulls().len() == 1
    for column in ("events", "links"):
        for span_id, a, b in zip(got["span_id"], got[column], want[column], strict=True):
            left = None if a is None else _typeless(json.loads(a))
            assert left == (None if b is None else _typeless(json.loads(b))), (column, span_id)
    for column in ("attributes", "resource_attributes"):
        for span_id, a, b in zip(got["span_id"], got[column], want[column], strict=True):
            left, right = _typeless(json.loads(a)), _typeless(json.loads(b))
            if left != right:
                extra = {
                    k: (left.get(k), right.get(k))
                    for k in left.keys() | right.keys()
                    if left.get(k) != right.get(k)
                }
                raise AssertionError(f"{column} of {span_id}: {extra}")
    assert_frame_equal(got.drop(skip), want.drop(skip), check_exact=False, rel_tol=1e-12)


def test_derived_facts_from_first_principles(chdb_root: Path) -> None:
    url = _clickhouse(chdb_root, "principles")
    con = open_reader(url)
    try:
        rows = {
            (r["service_name"], r["start_time"]): r
            for r in con.sql("SELECT * FROM spans WHERE start_time >= $s", params={"s": START})
            .pl()
            .to_dicts()
        }
    finally:
        con.close()

    def at(service: str, second: int) -> dict[str, Any]:
        return rows[service, START + timedelta(seconds=second)]

    chunks, flagged, skewed = at("agents", 0), at("agents", 1), at("agents", 2)
    assert (chunks["ttft_ms"], chunks["stream"], chunks["tenant"]) == (80.0, True, "acme")
    assert (flagged["ttft_ms"], flagged["stream"]) == (45.0, False)
    assert (skewed["ttft_ms"], skewed["stream"], skewed["tenant"]) == (None, True, "acme")
    limited, other_error, decided = at("agents", 3), at("agents", 4), at("agents", 5)
    assert (limited["throttled"], limited["tenant"]) == (True, "globex")
    assert other_error["throttled"] is False and decided["throttled"] is False
    stream, whole = at("openlit-app", 6), at("openlit-app", 7)
    assert (stream["ttft_ms"], stream["tenant"]) == (250.0, "42")
    assert whole["ttft_ms"] is None
    assert at("langfuse-app", 8)["tenant"] == "initech"
    assert at("langfuse-app", 9)["tenant"] == "u-2"
    tgi, tei, typed, not_tgi = (at("tgi", s) for s in (10, 11, 12, 13))
    assert (tgi["model_ms"], tgi["queue_ms"]) == (1200.0, 30.0)
    assert (tgi["input_tokens"], tgi["output_tokens"]) == (120, 64)
    assert json.loads(tgi["attributes"]) == {"seed": "None"}
    assert tei["model_ms"] == pytest.approx(0.25) and tei["input_tokens"] == 42
    assert (typed["model_ms"], typed["queue_ms"], typed["input_tokens"]) == (500.0, 2.5, 5)
    assert json.loads(typed["attributes"]) == {"inference_time": "1ms", "prompt_tokens": 6}
    assert (not_tgi["model_ms"], not_tgi["queue_ms"], not_tgi["output_tokens"]) == (
        None,
        None,
        None,
    )
    triton, partial = at("triton", 14), at("triton", 15)
    assert (triton["model"], triton["queue_ms"], triton["model_ms"]) == ("bge-small", 5.0, 20.0)
    assert (partial["queue_ms"], partial["model_ms"]) == (3.0, None)


_METRICS = ("--by", "tenant,model", "--columns", "all", "--format", "csv")


def test_metrics_by_tenant_and_model_are_the_collectors(
    duck_path: Path, chdb_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`infermeter metrics --by tenant,model` on both engines: every column equal, the
    remote-parent FastAPI requests found on ClickHouse too (analytics see the parent
    lives in another service), and the throttles and TTFT counted from first principles."""
    url = _clickhouse(chdb_root, "metrics")
    assert main(["metrics", "--store", url, *_METRICS]) == 0
    got = pl.read_csv(io.StringIO(capsys.readouterr().out))
    assert main(["metrics", "--store", str(duck_path), *_METRICS]) == 0
    want = pl.read_csv(io.StringIO(capsys.readouterr().out))
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    for column in ("requests", "errors", "throttle_rate", "ttft_p95_ms", "token_cost_usd"):
        assert column in got.columns
    # Recordings: 7 requests for each GenAI emitter (2 throttled), 3 FastAPI requests (1
    # throttled); built: 6 + 2 + 2 + 4 + 2 root spans, one throttled (the exception event).
    assert got["requests"].sum() == 5 * 7 + 3 + 16
    throttled = (got["throttle_rate"] * got["requests"]).round(6).sum()
    assert throttled == 5 * 2 + 1 + 1
    acme = got.filter((pl.col("tenant") == "acme") & (pl.col("model") == "gpt-4o-mini"))
    assert acme["requests"].sum() > 0


def test_tenant_attributes_are_a_setting_of_init(
    chdb_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`clickhouse init` reads INFERMETER_TENANT_ATTRIBUTES like the collector (argument >
    environment > default), generates it into the views and records it."""
    admin = parse_store(f"chdb://{chdb_root}").client()
    admin.command("CREATE DATABASE IF NOT EXISTS settings")
    url = f"chdb://{chdb_root}?database=settings"
    client = parse_store(url).client()
    client.command(OTEL_TRACES_DDL.format(table="otel_traces"))
    span = otlp_span("chat", attributes={"user.id": "u-9", "tenant_id": "t-1"})
    insert_otel_traces(client, otel_traces_arrow([otlp_request([span])]))

    def tenant() -> str | None:
        rows = client.query("SELECT tenant FROM infermeter_spans").result_rows
        return rows[0][0]  # type: ignore[no-any-return]

    monkeypatch.delenv("INFERMETER_TENANT_ATTRIBUTES", raising=False)
    assert main(["clickhouse", "init", "--store", url]) == 0
    assert tenant() == "t-1"
    assert clickhouse_view_settings(client) == {
        "tenant_attributes": list(DEFAULT_TENANT_ATTRIBUTES)
    }
    monkeypatch.setenv("INFERMETER_TENANT_ATTRIBUTES", "user.id,tenant_id")
    assert main(["clickhouse", "init", "--store", url]) == 0
    assert tenant() == "u-9"
    assert main(["clickhouse", "init", "--store", url, "--tenant-attributes", "session.id"]) == 0
    assert tenant() is None
    assert clickhouse_view_settings(client) == {"tenant_attributes": ["session.id"]}
    assert "tenant from session.id" in capsys.readouterr().err
    # Recorded once per change, with the schema version.
    assert main(["clickhouse", "init", "--store", url, "--tenant-attributes", "session.id"]) == 0
    recorded = client.query(
        "SELECT count() FROM infermeter_migrations WHERE view_settings != ''"
    ).result_rows
    assert recorded[0][0] == 3


# -- quality: evaluation results as span events and as OTLP log records -------------------


def _log_record(scope_logs: Any, **fields: Any) -> None:
    record = scope_logs.log_records.add()
    attributes = fields.pop("attributes", {})
    body = fields.pop("body", None)
    for key, value in fields.items():
        setattr(record, key, value)
    for key, value in attributes.items():
        kv = record.attributes.add()
        kv.key = key
        if isinstance(value, str):
            kv.value.string_value = value
        elif isinstance(value, int):
            kv.value.int_value = value
        else:
            kv.value.double_value = value
    if isinstance(body, dict):
        for key, value in body.items():
            kv = record.body.kvlist_value.values.add()
            kv.key = key
            kv.value.string_value = value
    elif body is not None:
        record.body.string_value = body


def _judged() -> tuple[list[ExportTraceServiceRequest], list[ExportLogsServiceRequest]]:
    """Five judged chat requests: A and B inside their spans (B's event has no time: the
    span's end), C by a log record naming only the response id (LogRecord.event_name), D
    and E by log records parented to their span (D names the event the older way, in the
    ``event.name`` attribute); plus a chat message record that is no evaluation."""
    evaluation = "gen_ai.evaluation.result"
    spans = {}
    for n, (name, tenant) in enumerate(
        (("A", "acme"), ("B", "acme"), ("C", "globex"), ("D", "globex"), ("E", "acme"))
    ):
        spans[name] = otlp_span(
            "chat",
            start=START + timedelta(minutes=n),
            kind=CLIENT,
            attributes={
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
                "gen_ai.response.id": f"resp-{name.lower()}",
                "tenant_id": tenant,  # a configured tenant attribute: derived on both
            },
        )
    event = spans["A"].events.add()
    event.name = evaluation
    event.time_unix_nano = spans["A"].start_time_unix_nano + _ms(10)
    for key, value in (
        ("gen_ai.evaluation.name", "relevance"),
        ("gen_ai.evaluation.score.label", "relevant"),
    ):
        kv = event.attributes.add()
        kv.key, kv.value.string_value = key, value
    kv = event.attributes.add()
    kv.key, kv.value.double_value = "gen_ai.evaluation.score.value", 0.75
    event = spans["B"].events.add()
    event.name = evaluation  # no time: the span's end
    kv = event.attributes.add()
    kv.key, kv.value.string_value = "gen_ai.evaluation.name", "relevance"
    kv = event.attributes.add()
    kv.key, kv.value.double_value = "gen_ai.evaluation.score.value", 0.2
    traces = [otlp_request(list(spans.values()), resource={"service.name": "chat"})]

    logs = ExportLogsServiceRequest()
    resource_logs = logs.resource_logs.add()
    kv = resource_logs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "judge"
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "judge"
    later = spans["E"].end_time_unix_nano + _ms(60_000)
    _log_record(
        scope_logs,
        time_unix_nano=later,
        observed_time_unix_nano=later + 5,
        event_name=evaluation,
        attributes={
            "gen_ai.evaluation.name": "relevance",
            "gen_ai.evaluation.score.value": 0.9,
            "gen_ai.response.id": "resp-c",
        },
    )
    _log_record(
        scope_logs,
        time_unix_nano=later + 1,
        trace_id=spans["D"].trace_id,
        span_id=spans["D"].span_id,
        severity_number=9,
        severity_text="INFO",
        attributes={
            "event.name": evaluation,
            "gen_ai.evaluation.name": "user_feedback",
            "gen_ai.evaluation.score.value": -1,
            "gen_ai.evaluation.explanation": "wrong answer",
        },
    )
    _log_record(
        scope_logs,
        time_unix_nano=later + 2,
        trace_id=spans["E"].trace_id,
        span_id=spans["E"].span_id,
        event_name=evaluation,
        attributes={
            "gen_ai.evaluation.name": "user_feedback",
            "gen_ai.evaluation.score.value": 1,
            "tenant.id": "acme",
        },
    )
    _log_record(
        scope_logs,
        time_unix_nano=later + 3,
        trace_id=spans["A"].trace_id,
        span_id=spans["A"].span_id,
        event_name="gen_ai.user.message",
        body={"content": "hi"},
    )
    recorded = json.loads((RECORDINGS / "openlit.json").read_text())
    openlit = [
        decode_logs_protobuf(base64.b64decode(export["body_base64"]))
        for export in recorded["exports"]
        if export["path"] == "/v1/logs"
    ]
    return traces, [logs, *openlit]


def _integral(value: Any) -> Any:
    """JSON values compared as values: the exporter writes 0.0 as 0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _events(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    name = "event_name" if table == "events" else "name"
    frame = con.sql(f"SELECT * FROM {table} ORDER BY time, source, {name}").pl()
    for column in ("attributes", "resource_attributes", "body"):
        if column in frame.columns:
            frame = frame.with_columns(
                pl.col(column).map_elements(
                    lambda text: json.dumps(_integral(json.loads(text)), sort_keys=True),
                    return_dtype=pl.String,
                )
            )
    return frame


def _as_exported(frame: pl.DataFrame) -> pl.DataFrame:
    """What ``otel_logs`` cannot hold, left out: the observed time (no column), and an
    empty body (written as no body)."""
    if "body" in frame.columns:
        frame = frame.with_columns(
            pl.when(pl.col("body") != '""').then(pl.col("body")).alias("body")
        )
    return frame.drop([c for c in ("observed_time",) if c in frame.columns])


def test_evaluations_and_log_events_give_the_same_quality(
    tmp_path: Path, chdb_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Evaluation span events (otel_traces Events) and log records (otel_logs, as the
    exporter writes them) read as the collector's events and evaluations; `metrics
    --quality` gives the same good rates and negative feedback on both engines."""
    traces, logs = _judged()
    duck_store = tmp_path / "judged.duckdb"
    limits = Limits(tenant_attributes=TENANT_ATTRIBUTES)
    writer = StoreWriter(duck_store)
    try:
        for request in traces:
            flat = flatten_request(request, limits=limits)
            writer.write(*to_arrow(flat), events_to_arrow(flat.events))
        for log_request in logs:
            writer.write(
                *to_arrow(flatten_request(ExportTraceServiceRequest())),
                events_to_arrow(flatten_logs(log_request, limits=limits).rows),
            )
    finally:
        writer.close()

    admin = parse_store(f"chdb://{chdb_root}").client()
    admin.command("CREATE DATABASE IF NOT EXISTS judged")
    url = f"chdb://{chdb_root}?database=judged"
    client = parse_store(url).client()
    clickhouse_init(client, tenant_attributes=TENANT_ATTRIBUTES)  # creates both tables
    insert_otel_traces(client, otel_traces_arrow(traces))
    for log_request in logs:
        insert_otel_logs(client, otel_logs_arrow([log_request], event_name_column=True))

    on_clickhouse, on_duckdb = open_reader(url), open_reader(duck_store)
    try:
        for table in ("events", "evaluations"):
            got, want = _events(on_clickhouse, table), _events(on_duckdb, table)
            assert_frame_equal(_as_exported(got), _as_exported(want))
        evaluations = on_clickhouse.sql("SELECT count(*) FROM evaluations").fetchall()[0][0]
    finally:
        on_clickhouse.close()
        on_duckdb.close()
    assert evaluations == 5

    args = ("--by", "tenant", "--quality", "--format", "csv")
    assert main(["metrics", "--store", url, *args]) == 0
    got_metrics = pl.read_csv(io.StringIO(capsys.readouterr().out))
    assert main(["metrics", "--store", str(duck_store), *args]) == 0
    want_metrics = pl.read_csv(io.StringIO(capsys.readouterr().out))
    assert_frame_equal(got_metrics, want_metrics, check_exact=False, rel_tol=1e-9)
    # First principles: acme judged A (0.75, relevant), B (0.2 < 0.5), E (thumbs up): 2
    # good of 3; globex C (0.9) good, D (thumbs down) not: 1 of 2, all its feedback negative.
    rows = {row["tenant"]: row for row in got_metrics.to_dicts()}
    assert rows["acme"]["good_rate"] == pytest.approx(2 / 3)
    assert rows["globex"]["good_rate"] == pytest.approx(1 / 2)
    assert rows["globex"]["negative_feedback_rate"] == pytest.approx(1.0)


def test_collect_into_clickhouse_keeps_evaluations_and_log_events(
    tmp_path: Path, chdb_root: Path
) -> None:
    """`collect --store chdb://…` keeps log records (otel_logs, as the exporter writes
    them) and evaluation span events (otel_traces Events): they read back as the events
    and evaluations the DuckDB collector stores."""
    traces, logs = _judged()
    admin = parse_store(f"chdb://{chdb_root}").client()
    admin.command("CREATE DATABASE IF NOT EXISTS collected_events")
    url = f"chdb://{chdb_root}?database=collected_events"
    duck_store = tmp_path / "collected.duckdb"
    for store in (url, str(duck_store)):
        with Collector(store, port=0, tenant_attributes=TENANT_ATTRIBUTES) as collector:
            for request in traces:
                assert send_otlp(collector.url + "/v1/traces", request).status == 200
            for log_request in logs:
                body = log_request.SerializeToString()  # protobuf, as the SDK sends it
                response = send_otlp(collector.url + "/v1/logs", body)
                assert response.status == 200, response.body
    on_clickhouse, on_duckdb = open_reader(url), open_reader(duck_store)
    try:
        for table in ("events", "evaluations"):
            got, want = _events(on_clickhouse, table), _events(on_duckdb, table)
            assert got.height == want.height > 0
            assert_frame_equal(_as_exported(got), _as_exported(want))
    finally:
        on_clickhouse.close()
        on_duckdb.close()


def test_the_views_sql_mirrors_the_collectors_python(chdb_root: Path) -> None:
    """Where a derivation is code on both sides (rate-limit class names, Rust durations,
    TGI token counts), the view's SQL answers what the collector's Python answers."""
    from infermeter.collectors import _clickhouse_schema as ch
    from infermeter.collectors import _flatten as fl

    client = parse_store(f"chdb://{chdb_root}").client()
    error_types = [
        "RateLimitError",
        "openai.RateLimitError",
        "<class 'openai.RateLimitError'>",
        "anthropic.RateLimitError",
        "botocore.errorfactory.ThrottlingException",
        "TooManyRequestsException",
        "google.api_core.exceptions.ResourceExhausted",
        "rate_limit_exceeded",
        "429",
        " 429 ",
        "TimeoutError",
        "openai.APIConnectionError",
        "500",
        "Rate.Limit",
        "",
    ]
    access = ch._Access(json=False)
    durations = ["1.5ms", "250µs", "2.25s", "800ns", "3us", " 7 ms ", "1.s", "fast", "5", "-1ms"]
    counts = ["42", " 7 ", "-3", "4.0", "x", "", "99999999999999999999"]

    def on_map(sql: str, key: str, text: str) -> str:
        return sql.replace("SpanAttributes", f"map({ch._sql_string(key)}, {ch._sql_string(text)})")

    columns = [ch._rate_limit(ch._sql_string(text)) for text in error_types]
    columns += [on_map(ch._rust_ms(access, "t"), "t", text) for text in durations]
    columns += [on_map(ch._debug_int(access, "n"), "n", text) for text in counts]
    (row,) = client.query(f"SELECT {', '.join(columns)}").result_rows
    answers = iter(row)
    for text in error_types:
        assert bool(next(answers)) == fl.is_rate_limit_error(text), text
    for text in durations:
        got, want = next(answers), fl._rust_duration_ms(text)
        assert (got is None and want is None) or got == pytest.approx(want), text
    for text in counts:
        assert next(answers) == fl._debug_int(text), text
