"""The write-ahead log: records, torn tails, segments, group commit — and ``kill -9`` of a
real collector mid-stream: every acknowledged span is in the store exactly once."""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from infermeter.agent import semconv as sc
from infermeter.collectors._ingest import IngestPipeline, PipelineConfig
from infermeter.collectors._store import decode_batch
from infermeter.collectors._wal import WriteAheadLog
from infermeter.collectors.testing import (
    collector_process,
    otlp_request,
    otlp_span,
    send_otlp,
)


def test_records_replay_in_order_across_reopening(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    seqs = [wal.append([b"rec", bytes([i])]) for i in range(5)]
    wal.sync(seqs[-1])
    assert seqs == [1, 2, 3, 4, 5]
    wal.close()
    again = WriteAheadLog(tmp_path)
    assert again.first_seq_this_run == 6
    assert again.wal_id == wal.wal_id
    assert [(s, p) for s, p in again.replay(after=2)] == [
        (3, b"rec\x02"),
        (4, b"rec\x03"),
        (5, b"rec\x04"),
    ]
    assert again.append([b"next"]) == 6
    # Records of this run are not part of "what earlier runs left".
    assert [s for s, _ in again.replay(after=0)] == [1, 2, 3, 4, 5]
    again.close()


_HEADER_BYTES = 20  # magic, length, seq, crc: the least a record can take


def _write(directory: Path, payloads: list[bytes], **options: Any) -> list[int]:
    wal = WriteAheadLog(directory, **options)
    seqs = [wal.append([p]) for p in payloads]
    wal.sync(seqs[-1])
    wal.close()
    return seqs


def _payloads(directory: Path, after: int = 0) -> list[bytes]:
    wal = WriteAheadLog(directory)
    try:
        return [p for _, p in wal.replay(after=after)]
    finally:
        wal.close()


def test_a_torn_last_record_is_ignored_logged_and_its_number_never_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write(tmp_path, [b"payload-%d" % i for i in range(3)])
    (segment,) = tmp_path.glob("*.wal")
    data = segment.read_bytes()
    segment.write_bytes(data[:-4])  # the crash cut the last record short
    again = WriteAheadLog(tmp_path)
    assert [p for _, p in again.replay(after=0)] == [b"payload-0", b"payload-1"]
    # The file could have held at most size/20 records numbered from 1.
    assert again.first_seq_this_run > (len(data) - 4) // _HEADER_BYTES
    assert "cut short by a crash" in caplog.text
    assert again.corrupt_regions == 1
    (kept,) = (tmp_path / "quarantine").iterdir()
    assert kept.read_bytes() == data[2 * (_HEADER_BYTES + 9) : -4]
    again.close()


def test_a_corrupted_record_is_quarantined_and_the_records_after_it_are_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write(tmp_path, [b"payload-%d" % i for i in range(4)])
    (segment,) = tmp_path.glob("*.wal")
    data = bytearray(segment.read_bytes())
    record = _HEADER_BYTES + 9
    data[record + _HEADER_BYTES + 3] ^= 0xFF  # a flipped bit inside the second payload
    data[2 * record + 6] ^= 0xFF  # and one in the third record's length field
    segment.write_bytes(bytes(data))
    wal = WriteAheadLog(tmp_path)
    assert [p for _, p in wal.replay(after=0)] == [b"payload-0", b"payload-3"]
    assert wal.corrupt_regions == 1  # two adjacent bad records: one damaged range
    assert wal.quarantined_bytes == 2 * record
    assert "corrupt bytes" in caplog.text
    wal.close()


def _damage_newest(directory: Path, how: str) -> None:
    if how == "flipped-byte":  # bit rot in records already written (and stored)
        newest = max(directory.glob("*.wal"))
        data = bytearray(newest.read_bytes())
        data[len(data) // 2] ^= 0x01
        newest.write_bytes(bytes(data))
        return
    # A run that opened its new segment and was killed before (zero-length) or while
    # (torn first record) writing its first record.
    crashed = WriteAheadLog(directory)
    crashed.close()
    newest = max(directory.glob("*.wal"))
    assert newest.stat().st_size == 0
    if how == "torn-first-record":
        newest.write_bytes(b"IMW1" + bytes(_HEADER_BYTES))


@pytest.mark.parametrize("how", ["torn-first-record", "zero-length", "flipped-byte"])
def test_a_damaged_newest_segment_never_leads_to_reused_names_or_numbers(
    tmp_path: Path, how: str
) -> None:
    first = _write(tmp_path, [b"a-%d" % i for i in range(20)])
    names = {p.name for p in tmp_path.glob("*.wal")}
    _damage_newest(tmp_path, how)
    # The next run writes, is killed (no close), and the one after reads what it wrote.
    wal = WriteAheadLog(tmp_path)
    later = [wal.append([b"b-%d" % i]) for i in range(5)]
    wal.sync(later[-1])
    assert min(later) > max(first)  # never a number an earlier record may carry
    assert not names & {p.name for p in tmp_path.glob("*.wal")} - {max(names)}
    assert f"{later[0]:020d}.wal" not in names  # a new file, not an old one appended to
    assert _payloads(tmp_path, after=max(first))[-5:] == [b"b-%d" % i for i in range(5)]


def test_stray_files_are_set_aside_with_a_log_line_and_the_log_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "99999999999999999999.wal").write_bytes(b"not ours")
    (tmp_path / "notes.wal").write_bytes(b"not ours either")
    wal = WriteAheadLog(tmp_path)
    assert wal.first_seq_this_run == 1
    wal.sync(wal.append([b"fine"]))
    assert [p for _, p in wal.replay(after=0, before=10)] == [b"fine"]
    wal.close()
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [
        "99999999999999999999.wal",
        "notes.wal",
    ]
    assert "99999999999999999999.wal is not a segment of this log" in caplog.text


def test_a_failed_write_leaves_nothing_behind_and_later_records_stay_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from infermeter.collectors import _wal

    wal = WriteAheadLog(tmp_path)
    wal.sync(wal.append([b"before"]))
    real_writev = os.writev

    def half_then_enospc(fd: int, buffers: list[Any]) -> int:
        data = b"".join(bytes(b) for b in buffers)
        os.write(fd, data[: len(data) // 2])  # the disk fills up mid-record
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_wal.os, "writev", half_then_enospc)
    with pytest.raises(OSError, match="No space left"):
        wal.append([b"refused" * 10])
    assert wal.error is not None
    monkeypatch.setattr(_wal.os, "writev", real_writev)
    wal.sync(wal.append([b"after"]))
    assert wal.error is None
    wal.close()
    assert _payloads(tmp_path) == [b"before", b"after"]
    assert not (tmp_path / "quarantine").exists()  # the half record was cut back off


def test_when_the_cut_back_fails_too_later_records_go_to_a_new_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from infermeter.collectors import _wal

    wal = WriteAheadLog(tmp_path)
    wal.sync(wal.append([b"before"]))
    real_writev, real_ftruncate = os.writev, os.ftruncate

    def half_then_eio(fd: int, buffers: list[Any]) -> int:
        data = b"".join(bytes(b) for b in buffers)
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.EIO, "Input/output error")

    def no_truncate(fd: int, size: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_wal.os, "writev", half_then_eio)
    monkeypatch.setattr(_wal.os, "ftruncate", no_truncate)
    with pytest.raises(OSError):
        wal.append([b"refused" * 10])
    monkeypatch.setattr(_wal.os, "writev", real_writev)
    monkeypatch.setattr(_wal.os, "ftruncate", real_ftruncate)
    after = [wal.append([b"after-%d" % i]) for i in range(3)]
    wal.sync(after[-1])
    wal.close()
    assert len(list(tmp_path.glob("*.wal"))) == 2
    assert _payloads(tmp_path) == [b"before", b"after-0", b"after-1", b"after-2"]


def test_records_of_a_failed_sync_are_never_reported_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from infermeter.collectors import _wal

    wal = WriteAheadLog(tmp_path)
    seq = wal.append([b"unsure"])
    real = os.fdatasync
    monkeypatch.setattr(
        _wal.os, "fdatasync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error"))
    )
    with pytest.raises(OSError, match="I/O error"):
        wal.sync(seq)
    monkeypatch.setattr(_wal.os, "fdatasync", real)
    # After a failed fsync a second one may "succeed" without the data: still refused.
    with pytest.raises(OSError):
        wal.sync(seq)
    later = wal.append([b"later"])
    wal.sync(later)  # a new segment: this one is durable
    assert wal.error is None
    wal.close()


def test_a_deleted_segment_is_never_reported_durable(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    wal.sync(wal.append([b"first"]))
    shutil.rmtree(tmp_path / "wal")  # the store's folder removed under the collector
    seq = wal.append([b"into nowhere"])
    with pytest.raises(OSError, match="deleted"):
        wal.sync(seq)
    assert wal.error is not None and "deleted" in wal.error


def test_segments_rotate_and_stored_ones_are_deleted(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    for i in range(10):
        wal.sync(wal.append([bytes([i]) * 90]))
    assert len(list(tmp_path.glob("*.wal"))) == 11  # one per record + the active one
    assert wal.release(stored_seq=6) == 6
    remaining = sorted(p.name for p in tmp_path.glob("*.wal"))
    assert remaining[0] == f"{7:020d}.wal"
    wal.close()
    # Numbers keep growing even when every older segment is gone; the (empty) newest
    # segment's name is not reused either.
    again = WriteAheadLog(tmp_path, segment_bytes=100)
    assert again.first_seq_this_run == 12
    assert [s for s, _ in again.replay(after=6)] == [7, 8, 9, 10]
    again.release(stored_seq=10)
    again.close()
    third = WriteAheadLog(tmp_path)
    assert third.first_seq_this_run == 13
    third.close()


def test_concurrent_writers_share_fsyncs_and_keep_every_record(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=4096)
    order: list[int] = []

    def writer(n: int) -> None:
        for i in range(50):
            seq = wal.append([b"%d-%d" % (n, i)], then=order.append)
            wal.sync(seq)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wal.close()
    assert order == list(range(1, 401))  # callbacks ran in sequence order
    replayed = list(WriteAheadLog(tmp_path).replay(after=0))
    assert [s for s, _ in replayed] == list(range(1, 401))
    assert len({p for _, p in replayed}) == 400


def test_a_closed_log_refuses_appends(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    wal.close()
    with pytest.raises(OSError, match="closed"):
        wal.append([b"late"])


# -- kill -9 of the real collector --------------------------------------------------------

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def _batch(n: int) -> tuple[list[str], bytes]:
    with _counter_lock:
        numbers = [next(_counter) for _ in range(n)]
    spans = [
        otlp_span(
            span_id=(1 << 40 | k).to_bytes(8, "big"),
            attributes={sc.TENANT_ID: "t", sc.GEN_AI_USAGE_INPUT_TOKENS: k},
            events=[(sc.EMBEDDING_EVENT, {sc.EMBEDDING_VECTOR: [float(k)]})],
        )
        for k in numbers
    ]
    return [f"{1 << 40 | k:016x}" for k in numbers], otlp_request(spans).SerializeToString()


def _stream_until_killed(
    endpoint: str, acked: set[str], lock: threading.Lock, stop: threading.Event
) -> None:
    while not stop.is_set():
        ids, body = _batch(100)
        try:
            response = send_otlp(endpoint, body, timeout=10)
        except OSError:
            return  # the collector is gone: this batch was never acknowledged
        if response.status == 200:
            with lock:
                acked.update(ids)


def _run_and_kill(store: Path, acked: set[str], more: int, **settings: object) -> None:
    lock = threading.Lock()
    with collector_process(store, **settings) as proc:
        stop = threading.Event()
        target = len(acked) + more
        threads = [
            threading.Thread(
                target=_stream_until_killed, args=(proc.traces_endpoint, acked, lock, stop)
            )
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        try:
            while True:
                with lock:
                    if len(acked) >= target:
                        break
                if proc.process.poll() is not None:
                    raise AssertionError("collector died on its own: " + proc.log_text()[-2000:])
                if time.monotonic() > deadline or not any(t.is_alive() for t in threads):
                    raise AssertionError(
                        "the collector stopped acknowledging: " + proc.log_text()[-2000:]
                    )
                stop.wait(0.01)
            proc.kill()  # mid-stream: requests are in flight on three connections
        finally:
            stop.set()
            for t in threads:
                t.join(30)


@pytest.mark.slow
def test_kill_9_mid_stream_loses_nothing_acknowledged_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store.duckdb"
    acked: set[str] = set()
    # 1: the store is written rarely, so acknowledged spans live only in the log.
    _run_and_kill(store, acked, 1500, flush_interval=30, batch_spans=1_000_000)
    # 2: frequent small inserts, so the kill also lands mid-insert.
    _run_and_kill(store, acked, 1500, flush_interval=0.05, batch_spans=300)
    # 3: a clean run replays what is left and stops.
    with collector_process(store) as proc:
        code = proc.stop()
        log = proc.log_text()
    assert code == 0, log
    assert "replayed the write-ahead log" in log

    con = duckdb.connect(str(store), read_only=True)
    counts = dict(con.execute("SELECT span_id, count(*) FROM spans GROUP BY span_id").fetchall())
    embedding_counts = dict(
        con.execute("SELECT span_id, count(*) FROM embeddings GROUP BY span_id").fetchall()
    )
    con.close()
    assert len(acked) >= 3000
    missing = acked - counts.keys()
    assert not missing, f"{len(missing)} acknowledged spans lost"
    assert max(counts.values()) == 1, "a span was stored twice"
    assert max(embedding_counts.values()) == 1
    assert acked <= embedding_counts.keys()


# -- the store refusing data ------------------------------------------------------------


def _tables(n: int, tag: str) -> tuple[Any, Any]:
    from infermeter.collectors._flatten import flatten_request, to_arrow

    return to_arrow(
        flatten_request(otlp_request([otlp_span(attributes={"tag": tag}) for _ in range(n)]))
    )


def _pipeline(tmp_path: Path) -> IngestPipeline:
    pipeline = IngestPipeline(
        tmp_path / "s.duckdb", tmp_path / "side" / "wal", PipelineConfig(flush_interval=60)
    )
    assert pipeline.open_store()
    return pipeline


def _tags(tmp_path: Path) -> dict[str, int]:
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    try:
        return dict(
            con.execute("SELECT attributes->>'$.tag', count(*) FROM spans GROUP BY 1").fetchall()
        )
    finally:
        con.close()


def test_a_record_the_store_refuses_is_set_aside_and_ingest_goes_on(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    pipeline.start()
    good, embeddings = _tables(3, "good")
    bad = good.set_column(
        good.column_names.index("attributes"), "attributes", pa.array(["{broken"] * 3)
    )
    pipeline.submit(good, embeddings)
    bad_seq = pipeline.submit(bad, embeddings)
    pipeline.submit(*_tables(2, "after"))
    assert pipeline.flush(60)
    stats = pipeline.stats()
    assert pipeline.close()
    assert _tags(tmp_path) == {"good": 3, "after": 2}
    assert stats["dead_lettered_spans"] == 3 and pipeline.healthy()
    (aside,) = (tmp_path / "side" / "dead-letter").iterdir()
    assert aside.name == f"{bad_seq:020d}.arrows"
    spans, _ = decode_batch(aside.read_bytes())
    assert spans.column("attributes").to_pylist() == ["{broken"] * 3
    # The set-aside record is past the checkpoint: a restart does not replay it.
    again = _pipeline(tmp_path)
    again.start()
    assert again.close()
    assert _tags(tmp_path) == {"good": 3, "after": 2}


def test_a_transient_failure_half_way_neither_loses_nor_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = _pipeline(tmp_path)
    original = IngestPipeline._write
    calls = 0

    def flaky(self: IngestPipeline, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # the whole batch: refused as data, so records go one by one
            raise duckdb.ConversionException("refused")
        if calls == 3:  # the second single record: the disk hiccups
            raise duckdb.IOException("disk hiccup")
        original(self, *args, **kwargs)

    monkeypatch.setattr(IngestPipeline, "_write", flaky)
    for tag in ("a", "b", "c"):
        pipeline.submit(*_tables(2, tag))
    pipeline.config = PipelineConfig(flush_interval=60, store_retry_interval=0.05)
    pipeline.start()
    assert pipeline.flush(60)
    assert pipeline.close()
    assert _tags(tmp_path) == {"a": 2, "b": 2, "c": 2}
    assert not (tmp_path / "side" / "dead-letter").exists()


def test_a_segment_released_while_a_sync_runs_is_no_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race a soak found: a sync holds the active segment's file while an append moves
    on to a new segment and the flusher releases the old one (the store has all of its
    records). The deleted file lost nothing, so the log must not refuse ingest."""
    wal = WriteAheadLog(tmp_path, segment_bytes=1000)
    first = wal.append([b"x" * 10])
    real_fdatasync = os.fdatasync
    moved: list[int] = []

    def fdatasync_while_the_log_moves_on(fd: int) -> None:
        if not moved:
            moved.append(wal.append([b"y" * 2000]))  # fills the segment: a new one starts
            assert wal.release(moved[0]) == 1  # the store took both records
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync_while_the_log_moves_on)
    wal.sync(first)
    assert wal.error is None
    later = wal.append([b"z"])
    wal.sync(later)
    assert wal.error is None
    wal.close()
    assert _payloads(tmp_path, after=moved[0]) == [b"z"]
