"""The ingest pipeline (log, queue, flusher) on its own: when queued spans reach the
store, and how it behaves when the store fails under it."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.collectors._flatten import flatten_request, to_arrow
from infermeter.collectors._ingest import IngestPipeline, PipelineConfig, Unavailable
from infermeter.collectors._store import StoreWriter
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


def _pipeline(tmp_path: Path, **config: Any) -> IngestPipeline:
    options: dict[str, Any] = {"flush_interval": 0.05, "store_retry_interval": 0.05}
    options.update(config)
    return IngestPipeline(
        tmp_path / "s.duckdb", tmp_path / "side" / "wal", PipelineConfig(**options)
    )


def _tags(store: Path) -> dict[str, int]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        rows = con.execute("SELECT attributes->>'$.tag', count(*) FROM spans GROUP BY 1").fetchall()
        return {str(tag): int(n) for tag, n in rows}
    finally:
        con.close()


@pytest.mark.parametrize(
    "failure",
    [
        duckdb.IOException('Could not write file "s.duckdb.wal": No space left on device'),
        duckdb.FatalException("database has been invalidated because of a previous fatal error"),
    ],
    ids=["disk-full", "invalidated"],
)
def test_while_the_store_fails_requests_get_503_health_says_why_and_it_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    pipeline = _pipeline(tmp_path)
    assert pipeline.open_store()
    pipeline.start()
    pipeline.submit(*_tables(3, "before"))
    assert pipeline.flush(30)
    failing = threading.Event()
    failing.set()
    real_write = StoreWriter.write

    def write(self: StoreWriter, *args: Any, **kwargs: Any) -> None:
        if failing.is_set():
            raise failure
        real_write(self, *args, **kwargs)

    monkeypatch.setattr(StoreWriter, "write", write)
    pipeline.submit(*_tables(2, "queued"))  # acknowledged: it is in the log
    assert _wait_for(lambda: pipeline.health_reason() is not None)
    reason = pipeline.health_reason()
    assert reason is not None and str(failure).split(":")[0] in reason
    with pytest.raises(Unavailable):
        pipeline.submit(*_tables(1, "refused"))
    failing.clear()
    assert _wait_for(pipeline.healthy)
    pipeline.submit(*_tables(4, "after"))
    assert pipeline.flush(30)
    stats = pipeline.stats()
    assert pipeline.close()
    assert _tags(tmp_path / "s.duckdb") == {"before": 3, "queued": 2, "after": 4}
    assert stats["store_reopens"] == (1 if "invalidated" in str(failure) else 0)


def test_a_failing_log_write_is_503_material_not_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infermeter.collectors import _wal

    pipeline = _pipeline(tmp_path)
    assert pipeline.open_store()
    pipeline.start()
    real = _wal.os.writev

    def full(fd: int, buffers: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_wal.os, "writev", full)
    with pytest.raises(Unavailable, match="No space left on device"):
        pipeline.submit(*_tables(2, "refused"))
    assert "No space left on device" in (pipeline.health_reason() or "")
    monkeypatch.setattr(_wal.os, "writev", real)
    pipeline.submit(*_tables(2, "later"))  # the disk has room again
    assert pipeline.healthy()
    assert pipeline.flush(30)
    assert pipeline.close()
    assert _tags(tmp_path / "s.duckdb") == {"later": 2}


def test_a_removed_store_file_stops_acknowledging(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    assert pipeline.open_store()
    pipeline.start()
    pipeline.submit(*_tables(2, "stored"))
    assert pipeline.flush(30)
    (tmp_path / "s.duckdb").unlink()
    reason = pipeline.health_reason()
    assert reason is not None and "removed" in reason
    with pytest.raises(Unavailable, match="removed"):
        pipeline.submit(*_tables(1, "into nowhere"))
    assert not pipeline.close()  # shutdown does not claim everything is stored


def test_a_newest_segment_that_lost_stored_records_never_hides_later_ones(
    tmp_path: Path,
) -> None:
    first = _pipeline(tmp_path)
    assert first.open_store()
    first.start()
    for tag in ("a", "b", "c"):
        first.submit(*_tables(1, tag))
    assert first.close()  # all three stored; the checkpoint says so
    for segment in (tmp_path / "side" / "wal").glob("*.wal"):
        segment.write_bytes(b"")  # the newest segment's content is lost
    # The next run takes records, then is killed before storing them (never closed).
    second = _pipeline(tmp_path, flush_interval=600, batch_spans=1_000_000)
    assert second.open_store()
    second.submit(*_tables(2, "later"))
    second._store.abandon()  # type: ignore[union-attr] — the kill: nothing stored
    third = _pipeline(tmp_path)
    assert third.open_store()
    third.start()
    assert third.close()
    assert _tags(tmp_path / "s.duckdb") == {"a": 1, "b": 1, "c": 1, "later": 2}


def test_shutdown_while_the_store_fails_says_so_and_the_next_run_stores_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = _pipeline(tmp_path)
    assert pipeline.open_store()
    pipeline.start()
    real_write = StoreWriter.write

    def full(self: StoreWriter, *args: Any, **kwargs: Any) -> None:
        raise duckdb.IOException("Could not write file: No space left on device")

    monkeypatch.setattr(StoreWriter, "write", full)
    pipeline.submit(*_tables(3, "pending"))
    assert _wait_for(lambda: pipeline.health_reason() is not None)
    assert not pipeline.close(timeout=1)  # not "everything received is stored"
    monkeypatch.setattr(StoreWriter, "write", real_write)
    again = _pipeline(tmp_path)
    assert again.open_store()
    again.start()
    assert again.close()
    assert _tags(tmp_path / "s.duckdb") == {"pending": 3}


def test_duckdb_invalidated_by_a_full_disk_is_reopened_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    # The real thing, not an injected exception: DuckDB invalidates its database when a
    # checkpoint cannot be written (a full disk), and every later statement fails.
    fs = tmp_path / "fs"
    fs.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(fs)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs")
    try:
        pipeline = IngestPipeline(
            fs / "s.duckdb",
            fs / "side" / "wal",
            PipelineConfig(flush_interval=0.05, store_retry_interval=0.05),
        )
        assert pipeline.open_store()
        pipeline.start()
        pipeline.submit(*_tables(50, "before"))
        assert pipeline.flush(30)
        free = os.statvfs(fs)
        (fs / "filler").write_bytes(bytes(free.f_bavail * free.f_frsize))
        # The checkpoint DuckDB also runs by itself once its log reaches 16 MB.
        store = pipeline._store
        assert store is not None
        with pytest.raises(duckdb.FatalException):
            store.connection().execute("CHECKPOINT")
        (fs / "filler").unlink()
        pipeline.submit(*_tables(50, "after"))  # the store's next write meets the dead connection
        assert pipeline.flush(30)
        assert pipeline.healthy()
        stats = pipeline.stats()
        assert pipeline.close()
        assert stats["store_reopens"] == 1
        assert _tags(fs / "s.duckdb") == {"before": 50, "after": 50}
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)
