"""concurrency(): peak by a sweep over start/end events, mean = busy time / window."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest
from infermeter.analytics import Deployments, concurrency, load_prices, request_table
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

T0 = datetime(2026, 11, 16, 10, 0, 0)


def _requests(*intervals: tuple[float, float, str]) -> duckdb.DuckDBPyRelation:
    con = store_in_memory()
    insert_spans(
        con,
        [
            span_record(
                start=T0 + timedelta(seconds=start), duration_ms=duration * 1000, endpoint=endpoint
            )
            for start, duration, endpoint in intervals
        ],
    )
    prices = load_prices()
    return request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    )


def test_peak_and_mean_by_sweep() -> None:
    # [0,4] [1,3] [2,5] overlap at 2..3 (3 at once); [6,7] alone. Busy 4+2+3+1 = 10 s over
    # the window 0..7 s.
    frame = concurrency(_requests((0, 4, "x"), (1, 2, "x"), (2, 3, "x"), (6, 1, "x")))
    assert frame.rows() == [(3, pytest.approx(10 / 7))]


def test_back_to_back_requests_do_not_overlap() -> None:
    frame = concurrency(_requests((0, 1, "x"), (1, 1, "x"), (2, 1, "x")))
    assert frame.rows() == [(1, pytest.approx(1.0))]


def test_grouped_and_bucketed() -> None:
    rel = _requests((0, 2, "a"), (1, 2, "a"), (0, 1, "b"), (3600, 1, "a"), (3600.5, 1, "a"))
    by_endpoint = concurrency(rel, by=["endpoint"])
    # a: [0,2] [1,3] [3600,3601] [3600.5,3601.5] -> peak 2, busy 6 s over 3601.5 s.
    assert by_endpoint.rows() == [("a", 2, pytest.approx(6 / 3601.5)), ("b", 1, 1.0)]
    hourly = concurrency(rel, by=["endpoint"], bucket="1h")
    assert hourly.rows() == [
        ("a", T0, 2, pytest.approx(4 / 3)),
        ("a", T0 + timedelta(hours=1), 2, pytest.approx(2 / 1.5)),
        ("b", T0, 1, 1.0),
    ]
