"""stage_breakdown(): share of request latency per stage from nested spans."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from infermeter.analytics import Deployments, load_prices, request_table, stage_breakdown
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

T0 = datetime(2026, 11, 16, 10, 0, 0)


def _child(
    entry: dict[str, Any], start_ms: float, end_ms: float, operation: str | None, **fields: Any
) -> dict[str, Any]:
    return span_record(
        start=entry["start_time"] + timedelta(milliseconds=start_ms),
        duration_ms=end_ms - start_ms,
        trace_id=entry["trace_id"],
        parent_span_id=entry["span_id"],
        is_entry=False,
        operation=operation,
        **fields,
    )


def _breakdown(rows: list[dict[str, Any]], **kwargs: Any) -> dict[tuple[Any, ...], Any]:
    con = store_in_memory()
    insert_spans(con, rows)
    prices = load_prices()
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    )
    frame = stage_breakdown(con, con.table("spans"), requests, **kwargs)
    keys = [
        c
        for c in frame.columns
        if c
        not in {
            "requests",
            "mean_ms",
            "p95_ms",
            "total_ms",
            "share",
            "mean_share",
            "nested_requests",
        }
    ]
    return {tuple(row[k] for k in keys): row for row in frame.iter_rows(named=True)}


def test_stage_shares_with_parallel_and_overlapping_spans() -> None:
    entry = span_record(start=T0, duration_ms=1000, tenant="t")
    rows = [
        entry,
        _child(entry, 10, 90, "retrieval"),
        _child(entry, 90, 140, "rerank"),
        _child(entry, 100, 500, "chat"),  # two parallel model calls: union 100..700
        _child(entry, 300, 700, "chat"),
        _child(entry, 950, 1200, "execute_tool"),  # clipped to the request: 950..1000
    ]
    stages = _breakdown(rows)
    assert stages[("inference",)]["total_ms"] == pytest.approx(600.0)
    assert stages[("inference",)]["share"] == pytest.approx(0.6)
    assert stages[("retrieval",)]["share"] == pytest.approx(0.08)
    assert stages[("rerank",)]["share"] == pytest.approx(0.05)
    assert stages[("tool",)]["share"] == pytest.approx(0.05)
    # Covered: 10..700 and 950..1000 = 740 ms, so 260 ms belong to no nested span.
    assert stages[("unattributed",)]["total_ms"] == pytest.approx(260.0)
    assert {row["nested_requests"] for row in stages.values()} == {1}


def test_requests_without_nested_spans_are_left_out_and_groups_kept() -> None:
    a1 = span_record(start=T0, duration_ms=1000, tenant="a")
    a2 = span_record(start=T0 + timedelta(seconds=5), duration_ms=500, tenant="a")
    b = span_record(start=T0, duration_ms=200, tenant="b")
    lonely = span_record(start=T0, duration_ms=200, tenant="b")
    rows = [
        a1,
        _child(a1, 0, 800, "chat"),
        a2,
        _child(a2, 0, 100, "embeddings"),
        _child(a2, 100, 500, "chat"),
        b,
        _child(b, 0, 100, None),
        lonely,
    ]
    stages = _breakdown(rows, by=["tenant"])
    # Tenant a: inference 800 + 400 over 1500 ms of nested requests; mean share (.8 + .8)/2.
    assert stages[("a", "inference")]["share"] == pytest.approx(1200 / 1500)
    assert stages[("a", "inference")]["mean_share"] == pytest.approx(0.8)
    assert stages[("a", "inference")]["requests"] == 2
    assert stages[("a", "embedding")]["share"] == pytest.approx(100 / 1500)
    # p95 of the per-request inference times 800 and 400: 400 + .95 * 400.
    assert stages[("a", "inference")]["p95_ms"] == pytest.approx(780.0)
    # Tenant b: only the request with a nested span counts (a span with no operation).
    assert stages[("b", "other")]["share"] == pytest.approx(0.5)
    assert stages[("b", "other")]["nested_requests"] == 1
