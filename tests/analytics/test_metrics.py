"""metrics(): every metric on a small dataset whose answers are computed by hand below."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from infermeter.analytics import (
    METRIC_COLUMNS,
    Deployments,
    load_prices,
    metric_inputs,
    metrics,
    request_table,
)
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

T0 = datetime(2026, 11, 16, 10, 0, 0)


def _request(
    offset_s: float,
    duration_ms: float,
    tenant: str,
    *,
    children: tuple[dict[str, Any], ...] = (),
    **fields: Any,
) -> list[dict[str, Any]]:
    """An entry span (serverless, 1024 MB, endpoint chat) and its nested spans."""
    entry = span_record(
        start=T0 + timedelta(seconds=offset_s),
        duration_ms=duration_ms,
        tenant=tenant,
        endpoint="chat",
        runtime="serverless",
        memory_mb=1024.0,
        prompt_version="v1" if tenant == "a" else "v2",
        **fields,
    )
    rows = [entry]
    for child in children:
        start = entry["start_time"] + timedelta(milliseconds=child.pop("at_ms"))
        rows.append(
            span_record(
                start=start,
                trace_id=entry["trace_id"],
                parent_span_id=entry["span_id"],
                is_entry=False,
                **child,
            )
        )
    return rows


LLM = {"model": "gpt-4o", "provider": "openai"}


def _dataset() -> list[dict[str, Any]]:
    # Ten requests. Sorted durations: 100 150 200 250 300 350 400 1200 1500 2000 (sum 6450).
    # Cold: a5 (2000, INIT 500) and b3 (1500, INIT 300, an error). b5 (1200) was throttled
    # twice and succeeded on the third attempt. SLO 1000 ms: breaches a5, b3, b5.
    rows: list[dict[str, Any]] = []
    rows += _request(
        0.0,
        100,
        "a",
        ttft_ms=50,
        input_tokens=1000,
        output_tokens=100,
        cache_read_tokens=400,
        **LLM,
    )
    rows += _request(
        1.0, 200, "a", ttft_ms=60, input_tokens=1000, output_tokens=100, reasoning_tokens=50, **LLM
    )
    rows += _request(2.0, 300, "a", ttft_ms=70, input_tokens=1000, output_tokens=100, **LLM)
    rows += _request(3.0, 400, "a", ttft_ms=80, input_tokens=1000, output_tokens=100, **LLM)
    rows += _request(
        4.0,
        2000,
        "a",
        cold_start=True,
        init_duration_ms=500,
        input_tokens=1000,
        output_tokens=100,
        **LLM,
    )
    rows += _request(0.05, 150, "b", input_tokens=1000, output_tokens=100, **LLM)
    rows += _request(1.1, 250, "b", input_tokens=1000, output_tokens=100, **LLM)
    rows += _request(
        4.5,
        1500,
        "b",
        cold_start=True,
        init_duration_ms=300,
        status_code="ERROR",
        error_type="TimeoutError",
        input_tokens=1000,
        output_tokens=100,
        **LLM,
    )
    rows += _request(5.0, 350, "b", input_tokens=1000, output_tokens=100, **LLM)
    rows += _request(
        7.0,
        1200,
        "b",
        children=(
            {"at_ms": 10, "duration_ms": 5, "throttled": True, "attempt": 1, "name": "llm", **LLM},
            {"at_ms": 20, "duration_ms": 5, "throttled": True, "attempt": 2, "name": "llm", **LLM},
            {
                "at_ms": 500,
                "duration_ms": 600,
                "attempt": 3,
                "name": "llm",
                "ttft_ms": 100,
                "input_tokens": 1000,
                "output_tokens": 100,
                **LLM,
            },
        ),
    )
    return rows


@pytest.fixture
def requests() -> Iterator[duckdb.DuckDBPyRelation]:
    con = store_in_memory()
    insert_spans(con, _dataset())
    prices = load_prices()
    deployments = Deployments([{"endpoint": "chat", "slo_ms": 1000.0}], prices=prices)
    yield request_table(con, con.table("spans"), prices=prices, deployments=deployments)
    con.close()


def _one(frame: pl.DataFrame) -> dict[str, Any]:
    assert frame.height == 1
    return frame.row(0, named=True)


def test_columns_are_the_contract(requests: duckdb.DuckDBPyRelation) -> None:
    frame = metrics(requests)
    assert tuple(frame.columns) == METRIC_COLUMNS
    frame = metrics(requests, by=["tenant", "model"], bucket="1d")
    assert tuple(frame.columns) == ("tenant", "model", "bucket", *METRIC_COLUMNS)


def test_counts_errors_and_latency_quantiles(requests: duckdb.DuckDBPyRelation) -> None:
    m = _one(metrics(requests))
    assert m["requests"] == 10
    assert m["errors"] == 1 and m["successes"] == 9
    assert m["error_rate"] == pytest.approx(0.1)
    # Latency as callers feel it: a cold Lambda span starts after INIT, so the two cold
    # requests waited 2000 + 500 and 1500 + 300 ms. quantile_cont over the 10 sorted
    # latencies 100 150 200 250 300 350 400 1200 1800 2500: p50 at 4.5 -> (300+350)/2;
    # p95 at 8.55 -> 1800 + .55*700; p99 at 8.91 -> 1800 + .91*700.
    assert m["p50_ms"] == pytest.approx(325.0)
    assert m["p95_ms"] == pytest.approx(2185.0)
    assert m["p99_ms"] == pytest.approx(2437.0)
    # The span duration (what Lambda bills per invocation) is kept apart from the latency.
    assert m["mean_duration_ms"] == pytest.approx(645.0)
    assert m["mean_latency_ms"] == pytest.approx(725.0)
    # TTFT: 50, 60, 70, 80 on entries and 500 + 100 = 600 for the retried call; p95 at 3.8 ->
    # 80 + .8 * 520.
    assert m["ttft_p95_ms"] == pytest.approx(496.0)


def test_cold_starts_and_slo(requests: duckdb.DuckDBPyRelation) -> None:
    m = _one(metrics(requests))
    assert m["cold_starts"] == 2 and m["cold_start_rate"] == pytest.approx(0.2)
    # cold latencies [1800, 2500]: 1800 + .95*700; warm [100..400, 1200]: at 6.65 ->
    # 400 + .65*800.
    assert m["cold_p95_ms"] == pytest.approx(2465.0)
    assert m["warm_p95_ms"] == pytest.approx(920.0)
    assert m["cold_start_penalty_ms"] == pytest.approx(1545.0)
    assert m["slo_ms"] == 1000.0
    assert m["slo_breaches"] == 3 and m["slo_breach_rate"] == pytest.approx(0.3)
    assert m["slo_breach_cold_share"] == pytest.approx(2 / 3)


def test_throttles_retries_and_tokens(requests: duckdb.DuckDBPyRelation) -> None:
    m = _one(metrics(requests))
    assert m["throttled"] == 1 and m["throttle_rate"] == pytest.approx(0.1)
    assert m["throttle_events"] == 2
    assert m["retries_per_request"] == pytest.approx(0.2)  # b5: attempts 1, 2, 3 = 2 retries
    assert m["input_tokens_per_request"] == pytest.approx(1000.0)
    assert m["output_tokens_per_request"] == pytest.approx(100.0)
    assert m["cache_read_tokens_per_request"] == pytest.approx(40.0)
    assert m["reasoning_tokens_per_request"] == pytest.approx(5.0)


def test_costs(requests: duckdb.DuckDBPyRelation) -> None:
    m = _one(metrics(requests))
    # gpt-4o: $2.50 / $10 per 1M input / output, $1.25 cached. Nine requests cost
    # 1000*2.5e-6 + 100*1e-5 = 0.0035 (reasoning is priced as output); a1 with 400 cached:
    # 600*2.5e-6 + 400*1.25e-6 + 100*1e-5 = 0.003.
    assert m["token_cost_usd"] == pytest.approx(0.0345)
    # Lambda x86 1 GB: (6.45 s billed + 0.8 s INIT) * 0.0000166667 + 10 * $0.0000002.
    compute = 7.25 * 0.0000166667 + 10 * 0.0000002
    assert m["compute_cost_usd"] == pytest.approx(compute)
    assert m["total_cost_usd"] == pytest.approx(0.0345 + compute)
    assert m["cost_per_request_usd"] == pytest.approx((0.0345 + compute) / 10)
    assert m["cost_per_successful_request_usd"] == pytest.approx((0.0345 + compute) / 9)
    assert m["unpriced_requests"] == 0


def test_window_rate_concurrency_and_utilization(requests: duckdb.DuckDBPyRelation) -> None:
    m = _one(metrics(requests))
    assert m["first_seen"] == T0
    assert m["last_seen"] == T0 + timedelta(seconds=8.2)  # b5 ends at 7.0 + 1.2
    assert m["window_s"] == pytest.approx(8.2)
    assert m["requests_per_s"] == pytest.approx(10 / 8.2)
    # a5 [4.0, 6.0], b3 [4.5, 6.0] and b4 [5.0, 5.35] overlap.
    assert m["peak_concurrency"] == 3
    assert m["mean_concurrency"] == pytest.approx(6.45 / 8.2)
    assert m["instances"] is None  # no service.instance.id on these spans
    # Serverless: mean over peak concurrency.
    assert m["utilization"] == pytest.approx(6.45 / 8.2 / 3)


def _sweep_requests(
    intervals: dict[str | None, list[tuple[float, float | None]]],
) -> duckdb.DuckDBPyRelation:
    """The request table of container requests running (start, end) seconds from T0, per
    tenant (None: no tenant); an end of None is stored as no end time at all."""
    con = store_in_memory()
    rows, endless = [], []
    for tenant, spans in intervals.items():
        for start, end in spans:
            row = span_record(
                start=T0 + timedelta(seconds=start),
                duration_ms=((start + 1 if end is None else end) - start) * 1000,
                tenant=tenant,
                runtime="container",
            )
            rows.append(row)
            if end is None:
                endless.append(row["span_id"])
    insert_spans(con, rows)
    for span_id in endless:
        con.execute("UPDATE spans SET end_time = NULL WHERE span_id = ?", [span_id])
    prices = load_prices()
    return request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    )


def test_peak_concurrency_is_a_sweep_per_group() -> None:
    # Intervals in seconds from T0, per tenant (None: no tenant). The peak is the most
    # requests running at one instant; a request ending when another starts does not
    # overlap it. Tenant "a" overlaps 3 deep around t=2.5 while "b"'s requests fall in
    # between a's in time (one sweep over every group must not mix them); "b" runs back
    # to back (peak 1); the tenant-less group overlaps twice.
    requests = _sweep_requests(
        {
            "a": [(0, 3), (1, 4), (2, 5), (6, 7)],
            "b": [(0.5, 1.5), (1.5, 2.5), (2.5, 3.5)],
            None: [(10, 12), (11, 13)],
        }
    )
    frame = metrics(requests, by=["tenant"])
    assert frame["tenant"].to_list() == ["a", "b", None]
    assert frame["peak_concurrency"].to_list() == [3, 1, 2]
    # Mean concurrency: busy time over the group's window.
    assert frame["mean_concurrency"].to_list() == [
        pytest.approx(10 / 7),
        pytest.approx(3 / 3),
        pytest.approx(4 / 3),
    ]
    # Every request together: a's three plus b's one at t in [2, 2.5).
    assert _one(metrics(requests))["peak_concurrency"] == 4
    # Per tenant and hour bucket: the same groups (all in one hour).
    hourly = metrics(requests, by=["tenant"], bucket="1h")
    assert hourly["peak_concurrency"].to_list() == [3, 1, 2]


def test_a_request_without_an_end_has_no_place_in_the_sweep() -> None:
    # Tenant "a": two placed requests overlap (peak 2) and a third has no end time (a store
    # filled by another emitter may hold one); it counts as a request but not in the sweep,
    # and the groups after it in the sweep are not shifted by its missing end.
    requests = _sweep_requests({"a": [(0, 3), (1, 4), (0.5, None)], "b": [(5, 6)]})
    frame = metrics(requests, by=["tenant"])
    assert frame["requests"].to_list() == [3, 1]
    assert frame["peak_concurrency"].to_list() == [2, 1]
    assert _one(metrics(requests))["peak_concurrency"] == 2


def test_a_metric_table_out_of_memory_on_several_threads_is_computed_on_one(
    requests: duckdb.DuckDBPyRelation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exact quantiles cannot spill: DuckDB may run out of memory with two threads where
    # one fits. Stand in for that: fetching runs out of memory while threads > 1.
    held = metric_inputs(requests, by=["tenant"])
    held.query("h", "SET threads = 2")
    expected = metrics(held, by=["tenant"])
    fetch = duckdb.DuckDBPyRelation.pl
    runs: list[int] = []

    def short_of_memory(self: duckdb.DuckDBPyRelation, *args: Any, **kwargs: Any) -> Any:
        [(threads,)] = self.query("x", "SELECT current_setting('threads')").fetchall()
        runs.append(int(threads))
        if int(threads) > 1:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate")
        return fetch(self, *args, **kwargs)

    monkeypatch.setattr(duckdb.DuckDBPyRelation, "pl", short_of_memory)
    assert metrics(held, by=["tenant"]).equals(expected)
    assert runs == [2, 1]
    # The connection's threads are as they were.
    assert held.query("h", "SELECT current_setting('threads')").fetchall() == [(2,)]
    # On one thread already, running out of memory is the caller's error.
    held.query("h", "SET threads = 1")
    monkeypatch.setattr(
        duckdb.DuckDBPyRelation,
        "pl",
        lambda self, *a, **k: (_ for _ in ()).throw(duckdb.OutOfMemoryException("oom")),
    )
    with pytest.raises(duckdb.OutOfMemoryException):
        metrics(held, by=["tenant"])


def test_metric_inputs_give_the_same_tables(requests: duckdb.DuckDBPyRelation) -> None:
    held = metric_inputs(requests, by=["tenant", "prompt_version"])
    # Held in a temporary table (DuckDB's buffer pool, spillable), not in process memory.
    assert held.query("h", "SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [
        (1,)
    ]
    assert held.columns[:2] == ["tenant", "prompt_version"]
    for by in (["tenant"], ["prompt_version"], []):
        assert metrics(held, by=by).equals(metrics(requests, by=by))
    with pytest.raises(ValueError, match="cannot group by"):
        metric_inputs(requests, by=["trace_id"])


def test_a_read_only_reader_holds_the_request_table_and_leaves_the_store_as_it_was(
    tmp_path: Path,
) -> None:
    import hashlib

    from infermeter.analytics import open as open_store
    from infermeter.collectors import apply_migrations

    store = tmp_path / "store.duckdb"
    con = duckdb.connect(str(store))
    apply_migrations(con)
    insert_spans(con, _dataset())
    con.close()
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    prices = load_prices()
    deployments = Deployments([{"endpoint": "chat", "slo_ms": 1000.0}], prices=prices)
    with open_store(store, prices=prices, deployments=deployments) as analysis:
        # The report's path (a temporary table of the read-only reader) and the metric
        # inputs built from it: the hand-computed numbers of the tests above.
        for held in (analysis.requests(), metric_inputs(analysis.requests(), by=["tenant"])):
            m = _one(metrics(held))
            assert (m["requests"], m["errors"], m["peak_concurrency"]) == (10, 1, 3)
            assert m["p95_ms"] == pytest.approx(2185.0)
            assert m["token_cost_usd"] == pytest.approx(0.0345)
            tenants = metrics(held, by=["tenant"])
            assert tenants["requests"].to_list() == [5, 5]
        # One temporary table per window: asking again reads the same one.
        assert analysis.requests() is analysis.requests()
        [(temporary,)] = analysis.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE temporary"
        ).fetchall()
        assert temporary == 2  # the request table and its metric inputs
        [(spill,)] = analysis.con.execute("SELECT current_setting('temp_directory')").fetchall()
    assert not Path(spill).exists()
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert [p.name for p in tmp_path.iterdir()] == ["store.duckdb"]


def test_grouped_by_tenant(requests: duckdb.DuckDBPyRelation) -> None:
    frame = metrics(requests, by=["tenant"])
    assert frame["tenant"].to_list() == ["a", "b"]
    a, b = frame.row(0, named=True), frame.row(1, named=True)
    # Latencies a: 100 200 300 400 2500 -> p95 at 3.8 = 400 + .8*2100;
    # b: 150 250 350 1200 1800 -> 1200 + .8*600.
    assert (a["p50_ms"], a["p95_ms"]) == (pytest.approx(300.0), pytest.approx(2080.0))
    assert (b["p50_ms"], b["p95_ms"]) == (pytest.approx(350.0), pytest.approx(1680.0))
    assert (a["peak_concurrency"], b["peak_concurrency"]) == (1, 2)
    assert (a["errors"], b["errors"]) == (0, 1)
    assert (a["slo_breach_cold_share"], b["slo_breach_cold_share"]) == (1.0, 0.5)
    assert b["cost_per_successful_request_usd"] == pytest.approx(b["total_cost_usd"] / 4)


def test_grouped_by_prompt_version_and_bucket(requests: duckdb.DuckDBPyRelation) -> None:
    frame = metrics(requests, by=["prompt_version"], bucket="1h")
    assert frame["prompt_version"].to_list() == ["v1", "v2"]
    assert frame["bucket"].to_list() == [T0, T0]
    assert frame["requests"].to_list() == [5, 5]
    daily = metrics(requests, bucket="1d")
    assert daily["bucket"].to_list() == [datetime(2026, 11, 16)]
    weekly = metrics(requests, bucket="1w")
    assert weekly["bucket"].to_list() == [datetime(2026, 11, 16)]  # ISO weeks start Monday


def test_buckets_split_requests_by_start() -> None:
    con = store_in_memory()
    # Two requests an hour apart; the first one runs across the hour boundary.
    insert_spans(
        con,
        [
            span_record(
                start=T0 + timedelta(minutes=59),
                duration_ms=120_000,
                runtime="container",
                service_instance="i-1",
            ),
            span_record(
                start=T0 + timedelta(minutes=61),
                duration_ms=1000,
                runtime="container",
                service_instance="i-2",
            ),
        ],
    )
    prices = load_prices()
    rel = request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    )
    frame = metrics(rel, bucket="1h")
    assert frame["bucket"].to_list() == [T0, T0 + timedelta(hours=1)]
    assert frame["requests"].to_list() == [1, 1]
    assert frame["peak_concurrency"].to_list() == [1, 1]
    # Containers: one instance seen per bucket, 10 requests at a time by default.
    assert frame["instances"].to_list() == [1, 1]
    assert frame["utilization"].to_list() == [pytest.approx(0.1), pytest.approx(0.1)]


def test_unpriced_requests_are_counted_not_priced_at_zero() -> None:
    con = store_in_memory()
    insert_spans(
        con,
        [
            span_record(
                runtime="serverless",
                memory_mb=1024.0,
                duration_ms=1000,
                model="gpt-4o",
                provider="openai",
                input_tokens=1000,
                output_tokens=0,
            ),
            span_record(
                runtime="serverless",
                memory_mb=1024.0,
                duration_ms=1000,
                model="in-house-llm",
                input_tokens=1000,
                output_tokens=10,
            ),
        ],
    )
    prices = load_prices()
    rel = request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    )
    m = _one(metrics(rel))
    assert m["unpriced_requests"] == 1
    assert m["token_cost_usd"] == pytest.approx(0.0025)  # the priced request only
    per_request_compute = 0.0000166667 + 0.0000002
    assert m["compute_cost_usd"] == pytest.approx(2 * per_request_compute)
    assert m["cost_per_request_usd"] == pytest.approx(0.0025 + per_request_compute)


def test_bad_arguments_are_clear_errors(requests: duckdb.DuckDBPyRelation) -> None:
    with pytest.raises(ValueError, match="cannot group by"):
        metrics(requests, by=["tenant; DROP TABLE spans"])
    with pytest.raises(ValueError, match="bucket"):
        metrics(requests, bucket="soon")
    with pytest.raises(ValueError, match="repeat"):
        metrics(requests, by=["tenant", "tenant"])


def test_empty_request_table_gives_no_rows() -> None:
    con = store_in_memory()
    prices = load_prices()
    rel = request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    )
    assert metrics(rel, by=["tenant"]).height == 0


def test_latency_includes_init_only_where_the_caller_waits_for_it() -> None:
    # Four cold requests, each a 200 ms span with a 1500 ms INIT: on Lambda and Cloud Run
    # the caller waits INIT + handler; a provisioned-concurrency environment ran INIT ahead
    # of time and a new pod starts before it takes traffic, so theirs is the span alone.
    rows: list[dict[str, Any]] = []
    for i, (runtime, init_type) in enumerate(
        (
            ("serverless", None),
            ("serverless_container", None),
            ("serverless", "provisioned-concurrency"),
            ("container", None),
        )
    ):
        rows.append(
            span_record(
                start=T0 + timedelta(seconds=i),
                duration_ms=200,
                endpoint=f"e{i}",
                runtime=runtime,
                cold_start=True,
                init_duration_ms=1500,
                initialization_type=init_type,
                memory_mb=1024.0,
            )
        )
    con = store_in_memory()
    insert_spans(con, rows)
    prices = load_prices()
    deployments = Deployments([{"slo_ms": 1000.0}], prices=prices)
    table = request_table(con, con.table("spans"), prices=prices, deployments=deployments)
    frame = metrics(table, by=["endpoint"])
    assert frame["endpoint"].to_list() == ["e0", "e1", "e2", "e3"]
    assert frame["p95_ms"].to_list() == pytest.approx([1700.0, 1700.0, 200.0, 200.0])
    assert frame["slo_breaches"].to_list() == [1, 1, 0, 0]
    assert frame["mean_duration_ms"].to_list() == pytest.approx([200.0] * 4)
