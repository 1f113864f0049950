"""ClickHouse stores (chdb in-process): the same spans written to a DuckDB store by
infermeter's collector path and to ``otel_traces`` as the OpenTelemetry Collector's
clickhouseexporter writes them give the same store rows and the same analytics.

chdb runs one engine (one data directory) per process: every in-process test uses the
module's one directory with a database of its own; the CLI test runs in subprocesses on a
directory of its own.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
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

from infermeter.analytics import (
    detect_drift,
    load_deployments,
    load_prices,
    metrics,
    recommend,
    request_table,
    runtime_economics,
)
from infermeter.analytics import open as analytics_open
from infermeter.collectors import Collector, open_reader, parse_store
from infermeter.collectors._clickhouse_otel import (
    go_number,
    insert_otel_traces,
    otel_traces_arrow,
)
from infermeter.collectors._clickhouse_schema import (
    CLICKHOUSE_SCHEMA_VERSION,
    OTEL_TRACES_DDL,
    clickhouse_init,
)
from infermeter.collectors._flatten import flatten_request, to_arrow
from infermeter.collectors._store import StoreWriter
from infermeter.collectors.testing import otlp_request, otlp_span, send_otlp
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from infermeter import main

START = datetime(2026, 11, 9)
TENANTS = ("acme", "globex", "initech")
MODELS = ("gpt-4o-mini", "claude-3-5-haiku-20241022")
DIM = 6


def _traffic(n: int, *, seed: int = 11) -> list[ExportTraceServiceRequest]:
    """``n`` requests over two weeks (prompt v1, then v2 with longer prompts and shifted
    query embeddings): a server entry span, a retrieval span with numeric attributes and
    an LLM client span with tokens, throttles, retries and an embedding event; two
    services on two resources (Lambda with cold starts, Kubernetes)."""
    rng = random.Random(seed)
    out: list[ExportTraceServiceRequest] = []
    for i in range(n):
        start = START + timedelta(seconds=rng.uniform(0, 14 * 86_400))
        week2 = start >= START + timedelta(days=7)
        lambda_side = rng.random() < 0.5
        tenant = rng.choice(TENANTS)
        model = rng.choice(MODELS)
        trace = (10_000 + i).to_bytes(16, "big")
        root_id = (1_000_000 + 3 * i).to_bytes(8, "big")
        entry_ms = rng.lognormvariate(6.5, 0.4)
        # The entry span names its prompt (as @observe does): which nested span's tags a
        # request falls back to is row-order dependent in the request table (see i15 note).
        root_attrs: dict[str, Any] = {
            "infermeter.endpoint": "/chat" if i % 3 else "/ingest",
            "tenant.id": tenant,
            "http.route": "/chat",
            "gen_ai.prompt.name": "answer",
            "gen_ai.prompt.version": "v2" if week2 else "v1",
        }
        if lambda_side:
            cold = rng.random() < 0.1
            root_attrs["faas.coldstart"] = cold
            if cold:
                root_attrs["infermeter.init_duration"] = rng.uniform(0.4, 1.9)
        llm_attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai" if model.startswith("gpt") else "anthropic",
            "gen_ai.request.model": model,
            "gen_ai.prompt.name": "answer",
            "gen_ai.prompt.version": "v2" if week2 else "v1",
            "gen_ai.usage.input_tokens": int(rng.gauss(900 if week2 else 500, 40)),
            "gen_ai.usage.output_tokens": int(rng.gauss(120, 30)),
            "gen_ai.usage.cache_read.input_tokens": rng.choice((0, 0, 256)),
            "gen_ai.request.stream": True,
            "gen_ai.response.time_to_first_chunk": rng.uniform(0.05, 0.4),
            "tenant.id": tenant,
        }
        if i % 4 == 0:  # a model server's own timings, and a GPU count out of INTEGER range
            llm_attrs["gen_ai.latency.time_in_queue"] = rng.uniform(0.001, 0.05)
            llm_attrs["infermeter.gpu.count"] = 1 << 40 if i % 8 == 0 else 2
        if rng.random() < 0.08:
            llm_attrs["infermeter.throttled"] = True
            llm_attrs["infermeter.retries"] = rng.randint(1, 3)
            llm_attrs["infermeter.retry_after"] = 2.5
        shift = 0.9 if week2 else 0.0
        vector = [rng.gauss(shift, 1.0) for _ in range(DIM)]
        status = 2 if rng.random() < 0.03 else 0
        if status:
            llm_attrs["error.type"] = "RateLimitError"
        spans = [
            otlp_span(
                "POST /chat",
                attributes=root_attrs,
                trace_id=trace,
                span_id=root_id,
                start=start,
                duration_ms=entry_ms,
                kind=2,
                status_code=status,
                status_message="upstream failed" if status else "",
            ),
            otlp_span(
                "retrieve",
                attributes={
                    "retrieval.documents": rng.randint(3, 12) + (4 if week2 else 0),
                    "retrieval.scores": [round(rng.random(), 3) for _ in range(3)],
                    "db.system": "qdrant",
                },
                trace_id=trace,
                span_id=(1_000_001 + 3 * i).to_bytes(8, "big"),
                parent_span_id=root_id,
                start=start + timedelta(milliseconds=2),
                duration_ms=entry_ms * 0.2,
            ),
            otlp_span(
                f"chat {model}",
                attributes=llm_attrs,
                events=[
                    (
                        "infermeter.embedding",
                        {
                            "infermeter.embedding.kind": "query",
                            "infermeter.embedding.vector": vector,
                        },
                    )
                ],
                trace_id=trace,
                span_id=(1_000_002 + 3 * i).to_bytes(8, "big"),
                parent_span_id=root_id,
                start=start + timedelta(milliseconds=5) + timedelta(milliseconds=entry_ms * 0.2),
                duration_ms=entry_ms * 0.7,
                kind=3,
                status_code=status,
            ),
        ]
        resource: dict[str, Any] = (
            {
                "service.name": "support-bot",
                "cloud.provider": "aws",
                "cloud.platform": "aws_lambda",
                "cloud.region": "eu-west-1",
                "faas.name": "support-bot",
                "faas.max_memory": 1024 * 1024 * 1024,
                "infermeter.runtime": "serverless",
                "service.instance.id": f"i-{i % 7}",
            }
            if lambda_side
            else {
                "service.name": "support-bot",
                "cloud.provider": "aws",
                "cloud.platform": "aws_eks",
                "infermeter.runtime": "container",
                "host.name": f"pod-{i % 3}",
                "infermeter.gpu.type": "nvidia-l4",
            }
        )
        out.append(otlp_request(spans, resource=resource, scope="infermeter"))
    return out


TRAFFIC = _traffic(600)


def _duckdb_store(path: Path, requests: list[ExportTraceServiceRequest]) -> Path:
    merged = ExportTraceServiceRequest()
    for request in requests:
        merged.resource_spans.extend(request.resource_spans)
    writer = StoreWriter(path)
    try:
        writer.write(*to_arrow(flatten_request(merged)))
    finally:
        writer.close()
    return path


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    path = _duckdb_store(tmp_path_factory.mktemp("duck") / "spans.duckdb", TRAFFIC)
    con = open_reader(path)
    yield con
    con.close()


@pytest.fixture(scope="module")
def chdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


_SHAPES = {
    "exporter": OTEL_TRACES_DDL,
    "json": OTEL_TRACES_DDL.replace("Map(LowCardinality(String), String)", "JSON").split(
        "    INDEX idx_trace_id"
    )[0]
    + "    INDEX idx_duration Duration TYPE minmax GRANULARITY 1\n) ENGINE = MergeTree()\n"
    "PARTITION BY toDate(Timestamp)\nORDER BY (ServiceName, SpanName, toDateTime(Timestamp), "
    "Timestamp)",
    "older": OTEL_TRACES_DDL.replace(
        "    ScopeName String CODEC(ZSTD(1)),\n    ScopeVersion String CODEC(ZSTD(1)),\n", ""
    ).replace("Duration UInt64 CODEC(T64, ZSTD(1))", "Duration Int64 CODEC(ZSTD(1))"),
}


def _clickhouse_store(root: Path, database: str, shape: str, blocks: int = 4) -> str:
    """A chdb store whose ``otel_traces`` has the given shape, filled in ``blocks``
    inserts that split traces (spans shuffled first), then ``clickhouse init``."""
    admin = parse_store(f"chdb://{root}").client()
    admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    url = f"chdb://{root}?database={database}"
    client = parse_store(url).client()
    client.command(_SHAPES[shape].format(table="otel_traces"))
    rows = otel_traces_arrow(TRAFFIC, json_column=shape == "json", scope_column=shape != "older")
    order = list(range(rows.num_rows))
    random.Random(3).shuffle(order)
    rows = rows.take(order)
    size = -(-rows.num_rows // blocks)
    for offset in range(0, rows.num_rows, size):
        insert_otel_traces(client, rows.slice(offset, size))
    report = clickhouse_init(client)
    assert not report.created_table
    assert report.shape.json == (shape == "json")
    assert report.shape.scope_column == (shape != "older")
    return url


def _sorted(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    return con.sql(f"SELECT * FROM {table} ORDER BY span_id, trace_id").pl()


@pytest.mark.parametrize("shape", ["exporter", "json", "older"])
def test_store_rows_are_identical(
    duck: duckdb.DuckDBPyConnection, chdb_root: Path, shape: str
) -> None:
    """Every column of every span and embedding row, read through infermeter_spans /
    infermeter_embeddings, equals what the collector stored from the same OTLP."""
    url = _clickhouse_store(chdb_root, f"rows_{shape}", shape)
    con = open_reader(url)
    try:
        for table in ("spans", "embeddings"):
            got, want = _sorted(con, table), _sorted(duck, table)
            # The exporter writes every value as text: 0.0 comes back as 0 (equal values).
            texts = [c for c in ("attributes", "resource_attributes") if c in want.columns]
            for column in texts:
                assert [json.loads(x) for x in got[column]] == [
                    json.loads(x) for x in want[column]
                ], column
            assert_frame_equal(got.drop(texts), want.drop(texts))
    finally:
        con.close()
    assert duck.sql("SELECT count(*) FROM spans").fetchall()[0][0] == 3 * len(TRAFFIC)


def _analytics(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    prices = load_prices()
    deployments = load_deployments(None, prices=prices)
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=deployments
    ).materialize()
    workloads = metrics(requests, by=("endpoint", "runtime"))
    recs = recommend(requests, prices=prices, deployments=deployments)
    drift = detect_drift(
        con,
        con.table("spans"),
        con.table("embeddings"),
        reference="2026-11-09..2026-11-15",
        current="2026-11-16..2026-11-22",
        by="model",
    )
    return {
        "by_tenant_model": metrics(requests, by=("tenant", "model")),
        "by_day": metrics(requests, by=("endpoint",), bucket="1d"),
        "economics": runtime_economics(workloads, prices=prices, deployments=deployments),
        "recommendations": pl.DataFrame(
            [{"kind": r.kind, "title": r.title, "confidence": r.confidence} for r in recs]
        ),
        "drift": drift.drop([c for c in drift.columns if c in ("computed_at", "run_id")]),
    }


def test_analytics_are_identical_on_clickhouse(
    duck: duckdb.DuckDBPyConnection, chdb_root: Path
) -> None:
    """Metrics, economics, recommendations and drift: the same on both engines."""
    url = _clickhouse_store(chdb_root, "analytics", "exporter", blocks=5)
    con = open_reader(url)
    try:
        got = _analytics(con)
    finally:
        con.close()
    want = _analytics(duck)
    for name, frame in want.items():
        try:
            assert_frame_equal(got[name], frame, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    verdicts = got["drift"].filter(pl.col("verdict") == "drift")
    assert not verdicts.is_empty()  # the v2 shift is found on ClickHouse too

    # First principles: input tokens per tenant as generated.
    tokens: dict[str, int] = {}
    for request in TRAFFIC:
        for span in request.resource_spans[0].scope_spans[0].spans:
            for kv in span.attributes:
                if kv.key == "gen_ai.usage.input_tokens":
                    tenant = next(
                        a.value.string_value for a in span.attributes if a.key == "tenant.id"
                    )
                    tokens[tenant] = tokens.get(tenant, 0) + kv.value.int_value
    table = (
        got["by_tenant_model"]
        .group_by("tenant")
        .agg(
            (pl.col("input_tokens_per_request") * pl.col("requests")).sum().round(6).alias("tokens")
        )
    )
    assert dict(table.iter_rows()) == pytest.approx(tokens)


def test_window_is_pushed_down(chdb_root: Path) -> None:
    """A window pulls only its spans (plus the margin), not the whole table."""
    url = _clickhouse_store(chdb_root, "window", "exporter", blocks=1)
    since, until = START + timedelta(days=3), START + timedelta(days=4)
    con = open_reader(url, since=since, until=until)
    try:
        low, high = con.sql("SELECT min(start_time), max(start_time) FROM spans").fetchall()[0]
    finally:
        con.close()
    assert low >= since - timedelta(hours=1)
    assert high < until + timedelta(hours=1)


def test_init_is_idempotent_and_versioned(chdb_root: Path) -> None:
    admin = parse_store(f"chdb://{chdb_root}").client()
    admin.command("CREATE DATABASE IF NOT EXISTS fresh")
    client = parse_store(f"chdb://{chdb_root}?database=fresh").client()
    first = clickhouse_init(client)
    assert first.created_table
    assert (first.from_version, first.to_version) == (0, CLICKHOUSE_SCHEMA_VERSION)
    again = clickhouse_init(client)
    assert not again.created_table
    assert again.from_version == again.to_version == CLICKHOUSE_SCHEMA_VERSION
    views = client.query(
        "SELECT name FROM system.tables WHERE database = 'fresh' AND engine = 'View' ORDER BY name"
    ).result_rows
    assert views == [("infermeter_embeddings",), ("infermeter_events",), ("infermeter_spans",)]
    logs = client.query(
        "SELECT engine FROM system.tables WHERE database = 'fresh' AND name = 'otel_logs'"
    ).result_rows
    assert logs == [("MergeTree",)]  # the exporter's logs table, created like otel_traces
    tables = client.query(
        "SELECT name, engine FROM system.tables WHERE database = 'fresh'"
        " AND name LIKE 'infermeter_requests%' ORDER BY name"
    ).result_rows
    assert tables == [
        ("infermeter_requests", "AggregatingMergeTree"),
        ("infermeter_requests_mv", "MaterializedView"),
    ]


def test_open_reader_needs_init(chdb_root: Path) -> None:
    admin = parse_store(f"chdb://{chdb_root}").client()
    admin.command("CREATE DATABASE IF NOT EXISTS bare")
    with pytest.raises(OSError, match="clickhouse init"):
        open_reader(f"chdb://{chdb_root}?database=bare")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, "0.5"),
        (100.0, "100"),
        (1e-7, "1e-7"),
        (1.5e21, "1.5e+21"),
        (123456789.125, "123456789.125"),
        (1e20, "100000000000000000000"),
        (-0.0, "0"),
    ],
)
def test_doubles_are_written_as_the_exporter_writes_them(value: float, text: str) -> None:
    """pcommon AsString / encoding/json: shortest digits, ES6 exponent cut-offs."""
    assert go_number(value) == text


def test_store_urls() -> None:
    assert parse_store("spans.duckdb").engine == "duckdb"
    assert parse_store(Path("C:/x/spans.duckdb")).engine == "duckdb"
    chdb = parse_store("chdb:///var/lib/ch?database=prod")
    assert (chdb.engine, chdb.path, chdb.database) == ("chdb", Path("/var/lib/ch"), "prod")
    server = parse_store("clickhouse://me:s3cret@ch.internal:8123/otel")
    assert (server.engine, server.database) == ("clickhouse", "otel")
    assert "s3cret" not in server.display
    with pytest.raises(ValueError, match="unknown store scheme"):
        parse_store("postgres://x/y")


_CLI = "import sys, infermeter; sys.exit(infermeter.main(sys.argv[1:]))"


def _cli(*args: str) -> str:
    """``infermeter ARGS`` in a fresh process (or ``-c CODE`` run as is)."""
    env = {**os.environ, "COLUMNS": "200"}
    argv = [sys.executable, *args] if args[0] == "-c" else [sys.executable, "-c", _CLI, *args]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_metrics_cli_on_the_exporters_table_equals_the_duckdb_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The done-when check: `infermeter metrics --store chdb:///DIR --by tenant,model` over an
    otel_traces table created by the exporter's DDL (by `clickhouse init`) and filled in
    blocks that split traces gives the DuckDB store's numbers for the same spans."""
    traffic = TRAFFIC[:240]  # three fresh processes: keep this one small
    files = []
    for part in range(3):  # every third span per file: each trace lands in several inserts
        request = ExportTraceServiceRequest()
        for source in traffic:
            copy = ExportTraceServiceRequest()
            copy.CopyFrom(source)
            spans = copy.resource_spans[0].scope_spans[0].spans
            keep = [s for j, s in enumerate(spans) if j % 3 == part]
            del spans[:]
            spans.extend(keep)
            request.resource_spans.extend(copy.resource_spans)
        path = tmp_path / f"part{part}.pb"
        path.write_bytes(request.SerializeToString())
        files.append(str(path))
    store = f"chdb://{tmp_path / 'ch'}"
    # init and load in one process (chdb's start-up dominates a small command).
    _cli(
        "-c",
        "import sys, infermeter\n"
        f"assert infermeter.main(['clickhouse', 'init', '--store', {store!r}]) == 0\n"
        f"sys.exit(infermeter.main(['clickhouse', 'load', '--store', {store!r}, *{files!r}]))",
    )
    args = ("--by", "tenant,model", "--columns", "all", "--format", "csv")
    on_clickhouse = _cli("metrics", "--store", store, *args)
    duck_path = _duckdb_store(tmp_path / "spans.duckdb", traffic)
    assert main(["metrics", "--store", str(duck_path), *args]) == 0
    on_duckdb = capsys.readouterr().out
    # Equal to float tolerance: sums run over rows in a different order.
    got = pl.read_csv(io.StringIO(on_clickhouse))
    want = pl.read_csv(io.StringIO(on_duckdb))
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    assert got.height == len(TENANTS) * len(MODELS)
    assert got["requests"].sum() == len(traffic)


def test_collect_writes_the_exporters_rows_into_clickhouse(
    duck: duckdb.DuckDBPyConnection, chdb_root: Path
) -> None:
    """`collect --store chdb://…`: infermeter's receiver (WAL, backpressure, tokens as
    always) writes otel_traces rows that read back as the DuckDB store's rows."""
    admin = parse_store(f"chdb://{chdb_root}").client()
    admin.command("CREATE DATABASE IF NOT EXISTS collected")
    url = f"chdb://{chdb_root}?database=collected"
    with Collector(url, port=0) as collector:
        for offset in range(0, len(TRAFFIC), 150):
            batch = ExportTraceServiceRequest()
            for request in TRAFFIC[offset : offset + 150]:
                batch.resource_spans.extend(request.resource_spans)
            response = send_otlp(collector.url + "/v1/traces", batch)
            assert response.status == 200, response.body
    con = open_reader(url)
    try:
        got, want = _sorted(con, "spans"), _sorted(duck, "spans")
        texts = ["attributes", "resource_attributes"]
        for column in texts:
            assert [json.loads(x) for x in got[column]] == [json.loads(x) for x in want[column]]
        # Durations round-trip through integer nanoseconds and seconds through ms: equal
        # to float tolerance; the rest exactly.
        assert_frame_equal(
            got.drop(texts), want.drop(texts), check_exact=False, rel_tol=1e-12, abs_tol=1e-9
        )
        assert_frame_equal(_sorted(con, "embeddings"), _sorted(duck, "embeddings"))
        shape = con.sql("SELECT count(*) FROM spans").fetchall()[0][0]
    finally:
        con.close()
    assert shape == 3 * len(TRAFFIC)


def test_request_rollup_tags_do_not_depend_on_span_order(chdb_root: Path) -> None:
    """An entry span with a tenant but no prompt and a child with a prompt version: the
    request takes the child's version whichever span is inserted (and aggregated) first,
    as the request table does (one state per tag, not one tuple from the first span)."""
    admin = parse_store(f"chdb://{chdb_root}").client()
    admin.command("CREATE DATABASE IF NOT EXISTS step2_order")
    client = parse_store(f"chdb://{chdb_root}?database=step2_order").client()
    client.command(OTEL_TRACES_DDL.format(table="otel_traces"))
    clickhouse_init(client)
    for n, first_child in ((1, False), (2, True)):
        trace = n.to_bytes(16, "big")
        entry = otlp_span(
            "handler",
            trace_id=trace,
            span_id=(16 * n).to_bytes(8, "big"),
            attributes={"tenant.id": "acme"},
            start=START,
        )
        child = otlp_span(
            "chat",
            trace_id=trace,
            span_id=(16 * n + 1).to_bytes(8, "big"),
            parent_span_id=(16 * n).to_bytes(8, "big"),
            attributes={"gen_ai.request.model": "m", "gen_ai.prompt.version": "v2"},
            start=START,
        )
        spans = [child, entry] if first_child else [entry, child]
        for span in spans:  # one insert block each: two partial rows per request
            insert_otel_traces(client, otel_traces_arrow([otlp_request([span])]))
    client.close()
    url = f"chdb://{chdb_root}?database=step2_order"
    with analytics_open(url, request_rows_after="0") as analysis:
        got = analysis.metrics(by=("tenant", "prompt_version"))
        assert analysis.request_rows is not None and analysis.request_rows.reads
    assert got.select("tenant", "prompt_version", "requests").rows() == [("acme", "v2", 2)]


def test_a_clickhouse_server_url_reaches_clickhouse_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ClickHouse server runs here: check what a clickhouse:// URL hands the client."""
    import clickhouse_connect

    seen: dict[str, Any] = {}

    def fake_get_client(**kwargs: Any) -> object:
        seen.update(kwargs)
        return object()

    monkeypatch.setattr(clickhouse_connect, "get_client", fake_get_client)
    parse_store("clickhouses://ana:p%40ss@ch.example:9440/otel").client()
    assert seen == {
        "host": "ch.example",
        "port": 9440,
        "username": "ana",
        "password": "p@ss",
        "database": "otel",
        "secure": True,
    }
    seen.clear()
    parse_store("clickhouse://ch.example").client()
    assert (seen["port"], seen["username"], seen["database"], seen["secure"]) == (
        8123,
        "default",
        "default",
        False,
    )


def test_an_unknown_store_scheme_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "--store", "postgres://db/spans"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "unknown store scheme 'postgres'" in err
