"""The ingest pipeline (log, queue, flusher) on its own: when queued spans reach the
store, and how it behaves when the store fails under it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
from infermeter.collectors._flatten import flatten_request, to_arrow
from infermeter.collectors._ingest import IngestPipeline, PipelineConfig
from infermeter.collectors.testing import otlp_request, otlp_span


def _tables(n: int, tag: str = "x") -> tuple[Any, Any]:
    return to_arrow(
        flatten_request(otlp_request([otlp_span(attributes={"tag": tag}) for _ in range(n)]))
    )


def _count(store: Path) -> int:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM spans").fetchall()[0][0])
    finally:
        con.close()


def _wait_for(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_fewer_spans_than_a_batch_are_stored_after_the_flush_interval(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    pipeline = IngestPipeline(
        store, tmp_path / "wal", PipelineConfig(batch_spans=1_000, flush_interval=0.1)
    )
    assert pipeline.open_store()
    pipeline.start()
    # The flusher is idle (empty queue) when the spans arrive; nobody asks it to flush.
    assert _wait_for(lambda: pipeline.stats()["store_open"])
    pipeline.submit(*_tables(100))
    stored = _wait_for(lambda: pipeline.stats()["stored_spans"] == 100)
    assert pipeline.close()
    assert stored, "100 queued spans (< batch_spans) were never stored"
    assert _count(store) == 100
