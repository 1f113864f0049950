"""SealedRequests: the request table from sealed facts + the tail equals request_table's,
row for row, as slices are sealed and merged."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.analytics import load_deployments, load_prices, request_table
from infermeter.analytics.query._bind import hold
from infermeter.analytics.rollup import _sealed
from infermeter.analytics.rollup._sealed import SealedRequests
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import insert_spans, span_record

T = datetime(2026, 12, 7, 9, 0)


def _requests(minutes: range) -> list[dict[str, Any]]:
    """One Cloud Run request a minute on one instance (each 90 s: every request overlaps
    the next, so the instance's busy time spans every seal), with a child model call."""
    rows = []
    for minute in minutes:
        entry = span_record(
            start=T + timedelta(minutes=minute),
            duration_ms=90_000,
            service_name="renderer",
            service_instance="run-a",
            endpoint="/render",
            runtime="serverless_container",
            tenant=("acme", "globex")[minute % 2],
            status_code="OK",
        )
        child = span_record(
            start=T + timedelta(minutes=minute, seconds=80),
            duration_ms=5_000,
            trace_id=entry["trace_id"],
            parent_span_id=entry["span_id"],
            is_entry=False,
            service_name="renderer",
            model="gpt-4o-mini",
            provider="openai",
            operation="chat",
            input_tokens=100 + minute,
            output_tokens=10,
            status_code="OK",
        )
        rows += [entry, child]
    return rows


def _rows(relation: duckdb.DuckDBPyRelation) -> dict[tuple[str, str], dict[str, Any]]:
    names = relation.columns
    return {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in relation.fetchall()}


def _same(have: duckdb.DuckDBPyRelation, want: duckdb.DuckDBPyRelation) -> None:
    assert have.columns == want.columns
    got, expected = _rows(have), _rows(want)
    assert got.keys() == expected.keys()
    for key, row in expected.items():
        for name, value in row.items():
            if isinstance(value, float):
                assert math.isclose(got[key][name], value, rel_tol=1e-12), (key, name)
            else:
                assert got[key][name] == value, (key, name)


def test_sealed_slices_and_their_merge_give_request_tables_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sealed, "_MAX_FILES", 2)  # the third slice merges them
    prices = load_prices(None)
    deployments = load_deployments(None, prices=prices)
    con = duckdb.connect()
    apply_migrations(con)
    sealed = SealedRequests(tmp_path / "facts", seal_after=timedelta(minutes=10))
    previous: int | None = None  # the previous watermark, in minutes after T
    reads = 0
    for upto in (25, 38, 52, 70):
        have = con.table("spans").aggregate("count(*)").fetchall()[0][0]
        start = have // 2
        insert_spans(con, _requests(range(start, upto)))
        spans = con.table("spans")
        ((newest,),) = spans.aggregate("max(start_time)").fetchall()
        requests = sealed.requests(con, spans, newest, prices=prices, deployments=deployments)
        scratch = hold(request_table(con, spans, prices=prices, deployments=deployments))
        _same(requests, scratch)
        # Stage (a) read every span the first time, then the traces with a span from the
        # previous watermark on: requests from a minute before it (a child 80 s in).
        read = sealed.span_reads - reads
        assert read == (2 * upto if previous is None else 2 * (upto - (previous - 1)))
        reads = sealed.span_reads
        # The newest span (the last child, 80 s into minute upto - 1) - 10 min, down to a
        # multiple of 10 minutes.
        previous = ((upto - 1) * 60 + 80 - 600) // 600 * 10
        assert sealed.watermark == T + timedelta(minutes=previous)
    # Watermarks 9:10, 9:20, 9:40, 10:00: four slices, merged into one at the third.
    assert len(sealed.files) == 2
    sealed.close()
    assert not (tmp_path / "facts").exists()
