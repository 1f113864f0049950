"""The collector's fault matrix, against a real ``infermeter collect`` process.

One invariant for every fault: each acknowledged span is stored exactly once, or the
collector stops acknowledging (503) and ``/healthz`` says it is unhealthy and why.
Faults: a damaged newest write-ahead-log segment (torn first record, zero length, a
flipped bit in records already stored) followed by ``kill -9``; a stray file in the
log's folder; a full disk (a small tmpfs, when the tests run as root); the store's
folder removed while the collector runs.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.agent import semconv as sc
from infermeter.collectors._sidecar import StorePaths
from infermeter.collectors.testing import (
    CollectorProcess,
    collector_process,
    otlp_request,
    otlp_span,
    send_otlp,
)

pytestmark = pytest.mark.slow

_ids = itertools.count(1)


def _batch(n: int, pad: int = 0) -> tuple[list[str], bytes]:
    numbers = [next(_ids) for _ in range(n)]
    spans = [
        otlp_span(
            span_id=(7 << 56 | k).to_bytes(8, "big"),
            attributes={sc.TENANT_ID: "t", "pad": "p" * pad},
        )
        for k in numbers
    ]
    return [f"{7 << 56 | k:016x}" for k in numbers], otlp_request(spans).SerializeToString()


def _send(proc: CollectorProcess, acked: set[str], n: int = 50, pad: int = 0) -> int:
    ids, body = _batch(n, pad)
    response = send_otlp(proc.traces_endpoint, body, timeout=60)
    if response.status == 200:
        acked.update(ids)
    elif response.status == 503:
        assert int(response.headers["retry-after"]) >= 1
    return response.status


def _health(proc: CollectorProcess) -> tuple[int, dict[str, Any]]:
    host, port = proc.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _flush(proc: CollectorProcess) -> None:
    assert send_otlp(proc.url + "/v1/flush", b"", token=proc.control_token).status == 200


def _assert_stored_exactly_once(store: Path, acked: set[str]) -> None:
    con = duckdb.connect(str(store), read_only=True)
    try:
        counts = dict(con.execute("SELECT span_id, count(*) FROM spans GROUP BY 1").fetchall())
    finally:
        con.close()
    missing = acked - counts.keys()
    assert not missing, f"{len(missing)} acknowledged spans lost"
    twice = [span for span, n in counts.items() if n > 1]
    assert not twice, f"{len(twice)} spans stored twice"


def _damage(wal: Path, how: str) -> None:
    newest = max(wal.glob("*.wal"))
    data = bytearray(newest.read_bytes())
    assert data, "the newest segment holds the first run's records"
    if how == "zero-length":
        newest.write_bytes(b"")
    elif how == "torn-first-record":
        newest.write_bytes(bytes(data[:23]))
    elif how == "flipped-byte":
        data[len(data) // 2] ^= 0x10
        newest.write_bytes(bytes(data))
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["torn-first-record", "zero-length", "flipped-byte"])
def test_a_damaged_newest_segment_then_kill_9_loses_nothing_acknowledged_later(
    tmp_path: Path, how: str
) -> None:
    store = tmp_path / "store.duckdb"
    acked: set[str] = set()
    with collector_process(store) as proc:
        for _ in range(10):
            assert _send(proc, acked) == 200
        _flush(proc)  # stored: whatever the damage takes was already in the store
        proc.kill()
    _damage(StorePaths.of(store).wal, how)
    # The next run holds what it acknowledges in the log only, and is killed.
    with collector_process(store, flush_interval=600, batch_spans=1_000_000) as proc:
        for _ in range(10):
            assert _send(proc, acked) == 200
        proc.kill()
    with collector_process(store) as proc:
        assert _send(proc, acked) == 200
        assert proc.stop() == 0, proc.log_text()
        log = proc.log_text()
    assert len(acked) == 21 * 50
    _assert_stored_exactly_once(store, acked)
    if how != "zero-length":
        assert "write-ahead log" in log and "copied to" in log  # quarantined, with a line


def test_a_stray_segment_name_is_set_aside_and_ingest_works(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    wal = StorePaths.of(store).wal
    wal.mkdir(parents=True)
    (wal / "99999999999999999999.wal").write_bytes(b"IMW1" + bytes(40))
    acked: set[str] = set()
    with collector_process(store) as proc:
        for _ in range(3):
            assert _send(proc, acked) == 200
        status, health = _health(proc)
        assert status == 200 and health["wal_quarantined_files"] == 1
        assert proc.stop() == 0
        assert "99999999999999999999.wal is not a segment of this log" in proc.log_text()
    assert (wal / "quarantine" / "99999999999999999999.wal").exists()
    _assert_stored_exactly_once(store, acked)


def test_the_store_folder_removed_stops_acknowledging_and_health_says_why(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = folder / "store.duckdb"
    acked: set[str] = set()
    with collector_process(store, log=tmp_path / "collector.log") as proc:
        assert _send(proc, acked) == 200
        _flush(proc)
        shutil.rmtree(folder)
        statuses = {_send(proc, acked) for _ in range(3)}
        status, health = _health(proc)
        code = proc.stop()
    assert statuses == {503}
    assert status == 503 and health["status"] == "failing"
    assert "removed" in health["reason"] or "deleted" in health["reason"]
    assert code != 0  # shutdown does not claim everything is stored


@contextlib.contextmanager
def _small_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode(errors='replace')}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_gives_503_until_space_returns_and_loses_nothing(tmp_path: Path) -> None:
    with _small_filesystem(tmp_path / "fs", "12m") as fs:
        store = fs / "store.duckdb"
        filler = fs / "filler"
        filler.write_bytes(bytes(7 * 1024 * 1024))
        acked: set[str] = set()
        with collector_process(store, log=tmp_path / "collector.log", flush_interval=0.05) as proc:
            statuses = []
            for _ in range(400):
                statuses.append(_send(proc, acked, pad=200))
                if statuses.count(503) >= 5:
                    break
            assert statuses.count(503) >= 5, "the disk never filled up"
            assert set(statuses) <= {200, 503}  # never a 500
            status, health = _health(proc)
            assert status == 503 and health["status"] == "failing"
            assert "No space left on device" in health["reason"]
            filler.unlink()
            later = [_send(proc, acked)]
            deadline = time.monotonic() + 60
            while later[-1] != 200 and time.monotonic() < deadline:
                time.sleep(0.1)  # the store retries on its own
                later.append(_send(proc, acked))
            later += [_send(proc, acked) for _ in range(5)]
            assert later[-6:] == [200] * 6 and set(later) <= {200, 503}
            _flush(proc)
            status, health = _health(proc)
            assert status == 200, health
            assert proc.stop() == 0, proc.log_text()
        _assert_stored_exactly_once(store, acked)


def test_a_flipped_bit_in_an_unstored_record_costs_that_record_only(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    acked: set[str] = set()
    # Acknowledged and only in the log (the store is written every 600 s), then killed.
    with collector_process(store, flush_interval=600, batch_spans=1_000_000) as proc:
        for _ in range(10):
            assert _send(proc, acked) == 200
        proc.kill()
    newest = max(StorePaths.of(store).wal.glob("*.wal"))
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x10  # bit rot inside the fifth or sixth record
    newest.write_bytes(bytes(data))
    with collector_process(store) as proc:
        _flush(proc)
        status, health = _health(proc)
        assert proc.stop() == 0, proc.log_text()
        log = proc.log_text()
    assert status == 200 and health["wal_corrupt_regions"] == 1
    assert "corrupt bytes" in log
    con = duckdb.connect(str(store), read_only=True)
    try:
        counts = dict(con.execute("SELECT span_id, count(*) FROM spans GROUP BY 1").fetchall())
    finally:
        con.close()
    # One request's record is lost to the damage (and kept in quarantine); the records
    # after it are stored, nothing twice.
    assert set(counts) <= acked and max(counts.values()) == 1
    assert len(counts) == len(acked) - 50
    (kept,) = (StorePaths.of(store).wal / "quarantine").iterdir()
    assert kept.stat().st_size > 50 * 16
