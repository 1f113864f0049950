"""Step 2 on ClickHouse (chdb in-process): request rows merged inside ClickHouse give the
DuckDB store's numbers — every metric column, recommendations — and the analytics read
them instead of spans for windows longer than ``request_rows_after``.

The same generated spans go to a DuckDB store (the collector's flatten + store writer) and
to ``otel_traces`` as the OpenTelemetry Collector's clickhouseexporter writes them: half
before ``clickhouse init`` (backfilled), half after it through the materialized view, in
shuffled blocks that split traces. The traffic has the request table's span-level cases
the rollup leaves to the spans (usage around usage, a service entered twice, a request
handed over to a second service, retries, a span of another tenant, self-hosted model
time) next to plain requests, a decorator entry naming its model around the model call,
untokenized calls and unpriced models.

chdb runs one engine per process: one directory for the module, one database per test.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("chdb")
pytest.importorskip("clickhouse_connect")

import infermeter.analytics as analytics
from infermeter.analytics.query import LLM_OPERATIONS, METRIC_COLUMNS, REQUEST_FACT_COLUMNS
from infermeter.collectors import parse_store
from infermeter.collectors._clickhouse_otel import insert_otel_traces, otel_traces_arrow
from infermeter.collectors._clickhouse_requests import ENTRY_COLUMNS
from infermeter.collectors._clickhouse_requests import LLM_OPERATIONS as CH_LLM_OPERATIONS
from infermeter.collectors._clickhouse_schema import OTEL_TRACES_DDL, clickhouse_init
from infermeter.collectors._flatten import flatten_request, to_arrow
from infermeter.collectors._store import StoreWriter
from infermeter.collectors.testing import otlp_request, otlp_span
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

START = datetime(2026, 11, 9)
SINCE, UNTIL = START + timedelta(days=2), START + timedelta(days=12)
TENANTS = ("acme", "globex", "initech")
# (model, provider); house-llm has no list price (unpriced requests).
MODELS = (
    ("gpt-4o-mini", "openai"),
    ("claude-3-5-haiku-20241022", "anthropic"),
    ("house-llm", "self_made"),
)
# List prices, USD per million tokens (OpenAI's pricing page: input, cached input, output).
GPT_4O_MINI = {"input": 0.15, "cache_read": 0.075, "output": 0.60}

LAMBDA = {
    "service.name": "bot",
    "cloud.platform": "aws_lambda",
    "infermeter.runtime": "serverless",
    "faas.max_memory": 1024 * 1024 * 1024,
}


def _cloud_run(i: int) -> dict[str, Any]:
    return {
        "service.name": "bot",
        "cloud.platform": "gcp_cloud_run",
        "infermeter.runtime": "serverless_container",
        "service.instance.id": f"run-{i % 3}",
    }


def _k8s(i: int) -> dict[str, Any]:
    return {
        "service.name": "bot",
        "cloud.platform": "aws_eks",
        "infermeter.runtime": "container",
        "host.name": f"pod-{i % 2}",
    }


def _llm_span(
    parent: bytes,
    at: datetime,
    attrs: dict[str, Any],
    *,
    name: str,
    trace: bytes,
    duration_ms: float,
    status: int,
    ids: Callable[[], bytes],
) -> Any:
    return otlp_span(
        name,
        attributes=attrs,
        trace_id=trace,
        span_id=ids(),
        parent_span_id=parent,
        start=at,
        duration_ms=duration_ms,
        kind=3,
        status_code=status,
    )


@dataclass
class Traffic:
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    # Per (tenant, model) of the requests in [SINCE, UNTIL) counted once per request:
    # requests, input, cache_read and output tokens.
    expected: dict[tuple[str, str | None], list[int]] = field(default_factory=dict)


def _traffic(n: int, seed: int = 7) -> Traffic:
    rng = random.Random(seed)
    out = Traffic()
    ids = iter(range(1, 10**9))

    def sid() -> bytes:
        return (10**6 + next(ids)).to_bytes(8, "big")

    for i in range(n):
        shape = i % 8
        start = START + timedelta(seconds=rng.uniform(0, 14 * 86_400))
        tenant = rng.choice(TENANTS)
        model, provider = MODELS[0] if rng.random() < 0.6 else rng.choice(MODELS)
        trace = (5000 + i).to_bytes(16, "big")
        root = sid()
        entry_ms = rng.lognormvariate(6.3, 0.5)
        resource = (LAMBDA, _cloud_run(i), _k8s(i))[i % 3]
        entry_attrs: dict[str, Any] = {
            "infermeter.endpoint": "/chat" if i % 5 else "/summarize",
            "tenant.id": tenant,
            "gen_ai.prompt.name": "answer",
            "gen_ai.prompt.version": "v2" if start >= START + timedelta(days=7) else "v1",
        }
        if resource is LAMBDA and rng.random() < 0.15:
            entry_attrs["faas.coldstart"] = True
            entry_attrs["infermeter.init_duration"] = rng.uniform(0.3, 1.5)
        usage = {
            "input": int(rng.gauss(600, 80)),
            "output": int(rng.gauss(150, 30)),
            "cache_read": rng.choice((0, 0, 128)),
        }
        tokens: dict[str, Any] = {
            "gen_ai.usage.input_tokens": usage["input"],
            "gen_ai.usage.output_tokens": usage["output"],
            "gen_ai.usage.cache_read.input_tokens": usage["cache_read"],
        }
        untokenized = shape == 3 and i % 16 == 3
        llm_attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.response.time_to_first_chunk": rng.uniform(0.05, 0.3),
            "tenant.id": tenant,
            **({} if untokenized else tokens),
        }
        if shape == 0 and rng.random() < 0.4:  # a throttled call retried
            llm_attrs["infermeter.throttled"] = True
            llm_attrs["infermeter.retries"] = rng.randint(1, 2)
        if shape == 2 and i % 16 == 2:  # a model server's own timing: self-hosted load
            llm_attrs["gen_ai.latency.time_in_queue"] = 0.01
        status = 2 if rng.random() < 0.05 else 0
        if shape == 4:  # the decorator names the model on its entry span (no tokens)
            entry_attrs["gen_ai.request.model"] = model
            entry_attrs["gen_ai.provider.name"] = provider
        if shape == 5:  # @observe returning the response: the same usage around it
            entry_attrs.update(tokens)
            entry_attrs["gen_ai.request.model"] = model
            entry_attrs["gen_ai.provider.name"] = provider

        llm = functools.partial(
            _llm_span,
            name=f"chat {model}",
            trace=trace,
            duration_ms=entry_ms * 0.6,
            status=status,
            ids=sid,
        )

        entry = otlp_span(
            "POST /chat",
            attributes=entry_attrs,
            trace_id=trace,
            span_id=root,
            start=start,
            duration_ms=entry_ms,
            kind=2,
            status_code=status,
        )
        spans = [entry, llm(root, start + timedelta(milliseconds=3), llm_attrs)]
        counted = [(start, tenant, model, usage)]
        if shape == 1 and i % 16 == 1:  # a span another tenant wrote into this trace
            spans.append(
                llm(root, start + timedelta(milliseconds=5), {**llm_attrs, "tenant.id": "evil"})
            )
        if shape == 6:  # the service entered twice in one trace (fan-out)
            again = start + timedelta(milliseconds=entry_ms + 5)
            second = sid()
            spans.append(
                otlp_span(
                    "POST /chat",
                    attributes={**entry_attrs, "infermeter.entry": True},
                    trace_id=trace,
                    span_id=second,
                    parent_span_id=sid(),
                    start=again,
                    duration_ms=entry_ms,
                    kind=2,
                )
            )
            spans.append(llm(second, again + timedelta(milliseconds=2), llm_attrs))
            counted.append((again, tenant, model, usage))
        out.requests.append(otlp_request(spans, resource=resource))
        if shape == 7:  # handed over: a second service's server span under our client span
            client = sid()
            out.requests[-1].resource_spans[0].scope_spans[0].spans.append(
                otlp_span(
                    "call ranker",
                    trace_id=trace,
                    span_id=client,
                    parent_span_id=root,
                    start=start + timedelta(milliseconds=1),
                    duration_ms=2,
                    kind=3,
                )
            )
            server = sid()
            ranker = [
                otlp_span(
                    "POST /rank",
                    attributes={"infermeter.endpoint": "/rank", "tenant.id": tenant},
                    trace_id=trace,
                    span_id=server,
                    parent_span_id=client,
                    start=start + timedelta(milliseconds=2),
                    duration_ms=entry_ms * 0.5,
                    kind=2,
                ),
                llm(server, start + timedelta(milliseconds=4), llm_attrs),
            ]
            out.requests.append(
                otlp_request(ranker, resource={**_k8s(i), "service.name": "ranker"})
            )
            counted.append((start, tenant, model, usage))  # the ranker's own request
        if untokenized:  # no usage reported: counted as a request with no tokens
            counted = [(at, who, which, dict.fromkeys(used, 0)) for at, who, which, used in counted]
        for at, who, which, used in counted:
            if SINCE <= at < UNTIL:
                row = out.expected.setdefault((who, which), [0, 0, 0, 0])
                row[0] += 1
                row[1] += used["input"]
                row[2] += used["cache_read"]
                row[3] += used["output"]
    return out


TRAFFIC = _traffic(320)


@pytest.fixture(scope="module")
def duck_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    merged = ExportTraceServiceRequest()
    for request in TRAFFIC.requests:
        merged.resource_spans.extend(request.resource_spans)
    path = tmp_path_factory.mktemp("duck") / "spans.duckdb"
    writer = StoreWriter(path)
    try:
        writer.write(*to_arrow(flatten_request(merged)))
    finally:
        writer.close()
    return str(path)


@pytest.fixture(scope="module")
def chdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


def _clickhouse_store(root: Path, database: str) -> tuple[str, int]:
    """Half the rows before ``clickhouse init`` (backfilled), half after it through the
    materialized view, in small shuffled blocks that split traces; returns the URL and the
    partial rollup rows."""
    admin = parse_store(f"chdb://{root}").client()
    admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    url = f"chdb://{root}?database={database}"
    client = parse_store(url).client()
    try:
        client.command(OTEL_TRACES_DDL.format(table="otel_traces"))
        rows = otel_traces_arrow(TRAFFIC.requests)
        order = list(range(rows.num_rows))
        random.Random(5).shuffle(order)
        rows = rows.take(order)
        half = rows.num_rows // 2
        insert_otel_traces(client, rows.slice(0, half))
        clickhouse_init(client)
        for offset in range(half, rows.num_rows, 150):
            insert_otel_traces(client, rows.slice(offset, 150))
        partial = int(client.query("SELECT count() FROM infermeter_requests").result_rows[0][0])
    finally:
        client.close()
    return url, partial


@pytest.fixture(scope="module")
def ch_store(chdb_root: Path) -> Iterator[str]:
    url, partial = _clickhouse_store(chdb_root, "step2")
    traces = len({r.resource_spans[0].scope_spans[0].spans[0].trace_id for r in TRAFFIC.requests})
    assert partial > traces  # traces really were split across insert blocks
    yield url


def _results(store: str, **options: Any) -> tuple[dict[str, pl.DataFrame], Any]:
    with analytics.open(store, since=SINCE, until=UNTIL, **options) as analysis:
        frames = {
            "tenant,model": analysis.metrics(by=("tenant", "model"), since=SINCE, until=UNTIL),
            "endpoint@1d": analysis.metrics(
                by=("endpoint",), bucket="1d", since=SINCE, until=UNTIL
            ),
            "all": analysis.metrics(since=SINCE, until=UNTIL),
        }
        recommendations = analysis.recommendations(SINCE, UNTIL)
        frames["recommend"] = pl.DataFrame(
            [
                {
                    "kind": r.kind,
                    "endpoint": r.endpoint,
                    "runtime": r.runtime,
                    "tenant": r.tenant,
                    "title": r.title,
                    "confidence": r.confidence,
                    "monthly_cost_change_usd": r.monthly_cost_change_usd,
                    "evidence": str(sorted(r.evidence.items())),
                }
                for r in recommendations
            ],
            schema_overrides={"monthly_cost_change_usd": pl.Float64},
        )
        read = analysis.request_rows.reads if analysis.request_rows is not None else None
    return frames, read


def _assert_same(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame]) -> None:
    for name, frame in want.items():
        try:
            assert_frame_equal(got[name], frame, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def test_request_rows_give_the_duckdb_numbers(duck_store: str, ch_store: str) -> None:
    """Every metric column by tenant,model, by endpoint per day and overall, and the
    recommendations: the same through the DuckDB file, step 1 (spans) and step 2
    (request rows), to float tolerance."""
    want, none = _results(duck_store)
    assert none is None
    step1, spans_read = _results(ch_store, request_rows_after="never")
    assert spans_read is None
    step2, reads = _results(ch_store, request_rows_after="0")
    assert want["tenant,model"].columns[2:] == list(METRIC_COLUMNS)
    assert want["tenant,model"]["unpriced_requests"].sum() > 0
    assert want["tenant,model"]["untokenized_requests"].sum() > 0
    assert want["all"]["compute_cost_usd"][0] > 0
    assert want["all"]["retries_per_request"][0] > 0
    assert not want["recommend"].is_empty()
    _assert_same(step1, want)
    _assert_same(step2, want)
    # Both halves of step 2 ran: request facts merged in ClickHouse for most requests,
    # the span path for the traces it leaves to the spans.
    (read,) = reads
    assert (read.since, read.until) == (SINCE, UNTIL)
    requests = int(want["all"]["requests"][0])
    assert 0 < read.fact_rows < requests
    assert 0 < read.traces < requests
    assert read.spans > 0


def test_request_facts_read_a_bucket_range_at_a_time_give_the_same_numbers(
    duck_store: str, ch_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a small read size the window's facts come in many bucket ranges, each stored
    in DuckDB as it arrives (never every request's facts in memory at once): the same
    numbers, every request counted once."""
    from infermeter.collectors import _clickhouse_requests

    monkeypatch.setattr(_clickhouse_requests, "ROWS_PER_READ", 50)
    parts: list[int] = []
    pull = _clickhouse_requests.pull_request_facts

    def counting_pull(*args: Any, **kwargs: Any) -> Any:
        sink = kwargs["sink"]
        assert sink is not None

        def counted(part: Any) -> None:
            parts.append(part.num_rows)
            sink(part)

        return pull(*args, **{**kwargs, "sink": counted})

    monkeypatch.setattr(_clickhouse_requests, "pull_request_facts", counting_pull)
    want, _ = _results(duck_store)
    got, reads = _results(ch_store, request_rows_after="0")
    _assert_same(got, want)
    (read,) = reads
    assert len(parts) > 3 and sum(parts) == read.fact_rows


def test_tokens_times_list_price(ch_store: str) -> None:
    """From first principles: acme's gpt-4o-mini requests' tokens as generated, each
    counted once (the usage around the model call, the request handed to another service
    and the fan-out included) and priced at OpenAI's list price."""
    requests, input_tokens, cache_read, output_tokens = TRAFFIC.expected[("acme", "gpt-4o-mini")]
    with analytics.open(ch_store, since=SINCE, until=UNTIL, request_rows_after="0") as analysis:
        frame = analysis.metrics(by=("tenant", "model"), since=SINCE, until=UNTIL)
    row = frame.filter((pl.col("tenant") == "acme") & (pl.col("model") == "gpt-4o-mini"))
    assert row["requests"][0] == requests
    assert row["input_tokens_per_request"][0] == pytest.approx(input_tokens / requests)
    assert row["cache_read_tokens_per_request"][0] == pytest.approx(cache_read / requests)
    cost = (
        (input_tokens - cache_read) * GPT_4O_MINI["input"]
        + cache_read * GPT_4O_MINI["cache_read"]
        + output_tokens * GPT_4O_MINI["output"]
    ) / 1e6
    assert row["token_cost_usd"][0] == pytest.approx(cost, rel=1e-9)


def test_window_size_chooses_spans_or_request_rows(
    ch_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window up to ``request_rows_after`` reads spans, a longer one request rows; an
    explicit argument beats INFERMETER_REQUEST_ROWS_AFTER, which beats the default (1d)."""
    day = START + timedelta(days=5)
    monkeypatch.delenv(analytics.ENV_REQUEST_ROWS_AFTER, raising=False)

    def reads(since: datetime, until: datetime, **options: Any) -> bool:
        with analytics.open(ch_store, since=since, until=until, **options) as analysis:
            frame = analysis.metrics(since=since, until=until)
            assert frame["requests"][0] > 0
            return analysis.request_rows is not None and bool(analysis.request_rows.reads)

    assert not reads(day, day + timedelta(hours=12))  # under the default day: spans
    assert reads(day, day + timedelta(days=2))  # over it: request rows
    monkeypatch.setenv(analytics.ENV_REQUEST_ROWS_AFTER, "3d")
    assert not reads(day, day + timedelta(days=2))
    assert reads(day, day + timedelta(days=2), request_rows_after="1h")
    monkeypatch.setenv(analytics.ENV_REQUEST_ROWS_AFTER, "never")
    assert not reads(day, day + timedelta(days=9))
    # A command that needs every span never reads request rows.
    with analytics.open(ch_store, request_rows_after="0", spans=True) as analysis:
        assert analysis.request_rows is None
    monkeypatch.setenv(analytics.ENV_REQUEST_ROWS_AFTER, "soon")
    with pytest.raises(ValueError, match="INFERMETER_REQUEST_ROWS_AFTER"):
        analytics.open(ch_store)


def test_a_clickhouse_store_is_read_with_the_asked_buffer_pool(ch_store: str) -> None:
    """Spans (step 1) and request rows (step 2) land in a DuckDB of the reader's buffer pool:
    ``memory_limit`` reaches both, as it does a DuckDB store's reader."""

    def pool(**options: Any) -> str:
        with analytics.open(ch_store, **options) as analysis:
            analysis.metrics()
            ((limit,),) = analysis.con.execute("SELECT current_setting('memory_limit')").fetchall()
            return str(limit)

    assert pool(request_rows_after="never", memory_limit="300MiB").startswith("300")
    assert pool(request_rows_after="0", memory_limit="300MiB").startswith("300")
    assert pool(request_rows_after="0", memory_limit="400MiB").startswith("400")


def test_the_rollup_gives_the_request_facts_columns() -> None:
    """The rollup's entry columns and model-call operations are the request table's."""
    assert [f"entry_{c}" for c in ENTRY_COLUMNS] == [
        c for c in REQUEST_FACT_COLUMNS if c.startswith("entry_")
    ]
    assert tuple(CH_LLM_OPERATIONS) == tuple(LLM_OPERATIONS)


def test_serve_and_alerts_snapshot_from_request_rows(duck_store: str, ch_store: str) -> None:
    """The rollups ``serve`` exports and ``alerts check`` evaluates (an open-ended window:
    request rows on ClickHouse) equal the DuckDB store's, sample by sample."""
    now = START + timedelta(days=15)
    with analytics.open(duck_store) as analysis:
        want = analysis.snapshot(now=now)
    with analytics.open(ch_store) as analysis:
        assert analysis.request_rows is not None  # the default size: request rows
        got = analysis.snapshot(now=now)
        assert analysis.request_rows.reads  # requests came from request rows
    assert (got.newest_span, got.window_start, got.window_end) == (
        want.newest_span,
        want.window_start,
        want.window_end,
    )
    assert got.samples.keys() == want.samples.keys()
    for name, samples in want.samples.items():
        assert [s.labels for s in got.samples[name]] == [s.labels for s in samples], name
        for mine, theirs in zip(got.samples[name], samples, strict=True):
            assert mine.value == pytest.approx(theirs.value, rel=1e-9, abs=1e-12, nan_ok=True), (
                name,
                theirs.labels,
            )
