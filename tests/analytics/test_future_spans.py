"""A span from the far future (year 2262: a wrong clock or a hostile timestamp) does not
move the windows that end at the newest data, and the commands say they ignored it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from infermeter.analytics import load_deployments, load_prices
from infermeter.analytics.query import FUTURE_TOLERANCE, newest_span
from infermeter.analytics.rollup import RollupOptions, compute_snapshot
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

from infermeter import main

NOW = datetime(2026, 12, 6, 12, 0)
FAR = datetime(2262, 4, 1)


def _rows(newest: datetime) -> list[dict[str, object]]:
    rows = [
        span_record(start=newest - timedelta(hours=h), endpoint="chat", runtime="serverless")
        for h in range(48)
    ]
    rows.append(span_record(start=FAR, endpoint="chat", runtime="serverless"))
    return rows


def test_newest_span_ignores_starts_beyond_the_tolerance() -> None:
    con = store_in_memory()
    newest = NOW - timedelta(minutes=5)
    insert_spans(con, _rows(newest))
    # Just inside the tolerance still counts: a host whose clock is a little ahead.
    insert_spans(con, [span_record(start=NOW + FUTURE_TOLERANCE - timedelta(minutes=1))])
    found = newest_span(con.table("spans"), now=NOW.replace(tzinfo=UTC))
    assert found.start == NOW + FUTURE_TOLERANCE - timedelta(minutes=1)
    assert found.future_spans == 1
    assert found.note() is not None and "1 span(s)" in (found.note() or "")


def test_the_exporter_window_ends_at_the_newest_believable_span() -> None:
    con = store_in_memory()
    newest = NOW - timedelta(hours=3)
    insert_spans(con, _rows(newest))
    prices = load_prices()
    snapshot = compute_snapshot(
        con,
        prices=prices,
        deployments=load_deployments(prices=prices),
        options=RollupOptions(window_end="newest"),
        now=NOW,
    )
    assert snapshot.newest_span == newest
    assert snapshot.window_end == snapshot.newest_span + timedelta(microseconds=1)
    assert snapshot.future_spans == 1


def test_recommend_looks_back_from_the_newest_believable_span(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    newest = now - timedelta(hours=1)
    insert_spans(con, _rows(newest))
    con.close()
    assert main(["recommend", "--store", str(path), "--json", "--days", "7"]) == 0
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert document["window"]["since"] == (newest - timedelta(days=7)).isoformat()
    until = datetime.fromisoformat(document["window"]["until"])
    assert newest < until <= datetime.now(UTC).replace(tzinfo=None) + FUTURE_TOLERANCE
    assert "1 span(s) start after" in err and "ignored" in err
