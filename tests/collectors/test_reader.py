"""``open_reader``: a consistent view that never blocks ingest — the live file when no
collector runs, a fresh snapshot from a running one, and clear errors otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest
from infermeter.agent import semconv as sc
from infermeter.collectors import SCHEMA_VERSION, open_reader
from infermeter.collectors._schema import MIGRATIONS
from infermeter.collectors._sidecar import StorePaths, WriterLock
from infermeter.collectors._store import StoreWriter
from infermeter.collectors.testing import (
    collector_process,
    insert_spans,
    otlp_request,
    otlp_span,
    send_otlp,
    span_record,
)


def _request(n: int) -> object:
    return otlp_request(
        [
            otlp_span(
                attributes={sc.TENANT_ID: "t"},
                events=[(sc.EMBEDDING_EVENT, {sc.EMBEDDING_VECTOR: [1.0]})],
            )
            for _ in range(n)
        ]
    )


def test_without_a_writer_the_live_file_is_read_read_only(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    writer = StoreWriter(store)
    con = writer.connection()
    insert_spans(con, [span_record(), span_record()])
    con.close()
    writer.close()
    reader = open_reader(store)
    assert reader.execute("SELECT count(*) FROM spans").fetchone() == (2,)
    with pytest.raises(duckdb.Error):
        reader.execute("DELETE FROM spans")
    reader.close()


def test_two_readers_of_one_store_in_one_process_both_read(tmp_path: Path) -> None:
    """A server holding a reader while a request opens another (with its own buffer pool
    and spill directory): DuckDB shares one instance per file per process and refuses other
    settings, so the second reader shares the first one's instead of failing."""
    store = tmp_path / "store.duckdb"
    writer = StoreWriter(store)
    con = writer.connection()
    insert_spans(con, [span_record(), span_record(), span_record()])
    con.close()
    writer.close()
    first = open_reader(store)
    second = open_reader(store, memory_limit="300MiB")
    third = open_reader(store)
    for reader in (first, second, third):
        assert reader.execute("SELECT count(*) FROM spans").fetchone() == (3,)
    for reader in (first, second, third):
        reader.close()
    # Once every reader is closed, a new one gets the settings it asks for.
    alone = open_reader(store, memory_limit="300MiB")
    limit = alone.execute("SELECT current_setting('memory_limit')").fetchone()
    assert limit is not None and str(limit[0]).startswith("300")
    alone.close()


def test_a_missing_store_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="infermeter collect"):
        open_reader(tmp_path / "nope.duckdb")


_CLI = [
    sys.executable,
    "-c",
    "import sys; from infermeter import main; sys.exit(main(sys.argv[1:]))",
]


def _file_bytes(path: Path) -> bytes:
    """The database file and DuckDB's own log beside it, if any."""
    log = path.with_name(path.name + ".wal")
    return path.read_bytes() + (log.read_bytes() if log.exists() else b"")


def test_an_older_store_is_refused_unchanged_until_migrated(tmp_path: Path) -> None:
    store = tmp_path / "old.duckdb"
    con = duckdb.connect(str(store))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in MIGRATIONS[0]:
        con.execute(statement)
    con.execute("INSERT INTO schema_version VALUES (1)")
    con.close()
    before = _file_bytes(store)
    with pytest.raises(OSError, match="infermeter migrate --store"):
        open_reader(store)
    assert _file_bytes(store) == before  # readers never write
    result = subprocess.run(
        [*_CLI, "migrate", "--store", str(store)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"from schema 1 to {SCHEMA_VERSION}" in result.stderr
    reader = open_reader(store)
    assert reader.execute("SELECT max(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    assert "events" in {r[0] for r in reader.execute("DESCRIBE spans").fetchall()}
    reader.close()


@pytest.mark.parametrize("command", ["metrics", "migrate", "collect"])
def test_a_foreign_duckdb_file_is_refused_in_one_line_and_left_untouched(
    tmp_path: Path, command: str
) -> None:
    foreign = tmp_path / "finance.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE ledger (account VARCHAR, amount DECIMAL(12, 2))")
    con.execute("INSERT INTO ledger VALUES ('acme', 12.50)")
    con.close()
    before = _file_bytes(foreign)
    extra = ["--port", "0"] if command == "collect" else []
    result = subprocess.run(
        [*_CLI, command, "--store", str(foreign), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not an infermeter store" in lines[0], result.stderr
    assert _file_bytes(foreign) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finance.duckdb"]  # nothing beside it
    con = duckdb.connect(str(foreign), read_only=True)
    assert {r[0] for r in con.execute("SHOW TABLES").fetchall()} == {"ledger"}
    con.close()


def test_a_snapshot_used_as_a_store_is_refused_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    with collector_process(store) as proc:
        assert send_otlp(proc.traces_endpoint, _request(3)).status == 200  # type: ignore[arg-type]
        snapshot = Path(
            json.loads(
                urllib.request.urlopen(
                    urllib.request.Request(
                        proc.url + "/v1/snapshot",
                        data=b"",
                        headers={"Authorization": f"Bearer {proc.control_token}"},
                    ),
                    timeout=60,
                ).read()
            )["path"]
        )
        copy = tmp_path / "copy.duckdb"
        copy.write_bytes(snapshot.read_bytes())
    result = subprocess.run(
        [*_CLI, "collect", "--store", str(copy), "--port", "0"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "snapshot" in lines[0], result.stderr


def test_an_import_in_progress_gives_a_clear_error_or_the_last_snapshot(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    StoreWriter(store).close()
    paths = StorePaths.of(store)
    with WriterLock(paths) as lock:
        lock.acquire({"kind": "import"})
        with pytest.raises(OSError, match="being written by `infermeter import`"):
            open_reader(store)
        paths.snapshots.mkdir(parents=True)
        old = paths.snapshots / f"{1:020d}-1.duckdb"
        snapshot = duckdb.connect(str(old))
        snapshot.execute("CREATE TABLE spans (span_id VARCHAR)")
        snapshot.execute("INSERT INTO spans VALUES ('from the snapshot')")
        snapshot.close()
        reader = open_reader(store)
        assert reader.execute("SELECT span_id FROM spans").fetchall() == [("from the snapshot",)]
        reader.close()


@pytest.mark.slow
def test_readers_get_consistent_views_while_a_collector_ingests(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    acked = 0
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[int] = []

    with collector_process(store, flush_interval=0.2) as proc:

        def ingest() -> None:
            nonlocal acked
            while not stop.is_set():
                status = send_otlp(proc.traces_endpoint, _request(50)).status  # type: ignore[arg-type]
                if status != 200:
                    failures.append(status)
                    continue
                with lock:
                    acked += 50

        threads = [threading.Thread(target=ingest) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            # Ingest is under way first (a collector's first request pays its lazy
            # imports: seconds on a loaded machine), so the check below is about readers.
            deadline = time.monotonic() + 60
            while True:
                with lock:
                    if acked:
                        break
                assert time.monotonic() < deadline, "the collector never acknowledged"
                time.sleep(0.05)
            seen = 0
            held = []
            for _ in range(4):
                time.sleep(0.3)
                with lock:
                    before = acked
                reader = open_reader(store)
                spans, embeddings = reader.execute(
                    "SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM embeddings)"
                ).fetchone()  # type: ignore[misc]
                # One snapshot, one transaction: both tables agree, and everything
                # acknowledged before the call is in it.
                assert spans == embeddings
                assert spans >= before
                assert spans >= seen
                seen = spans
                held.append(reader)  # readers stay open: ingest must go on regardless
            with lock:
                during = acked
            # Ingest goes on while the views are held: ten more requests are acknowledged.
            # Held views lock nothing the collector needs, so a stall would be for good;
            # the deadline only bounds how long a loaded machine may take (a request of
            # 50 spans can take over a second when 2 cores run 20 processes).
            deadline = time.monotonic() + 120
            while True:
                with lock:
                    if acked >= during + 10 * 50:
                        break
                assert time.monotonic() < deadline, "ingest stalled while readers held their views"
                time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join()
        for reader in held:
            reader.close()
        assert proc.stop() == 0
    assert failures == []
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM spans").fetchone() == (acked,)
    con.close()
    assert len(list(StorePaths.of(store).snapshots.glob("*.duckdb"))) <= 2


@pytest.mark.slow
def test_a_reader_holding_the_file_does_not_block_a_starting_collector(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    StoreWriter(store).close()
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_READ_ONLY, str(store)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        with collector_process(store) as proc:
            for _ in range(3):
                assert send_otlp(proc.traces_endpoint, _request(10)).status == 200  # type: ignore[arg-type]
            reader.kill()
            reader.wait()
            view = open_reader(store)  # waits for the collector to store the backlog
            assert view.execute("SELECT count(*) FROM spans").fetchone() == (30,)
            view.close()
            assert proc.stop() == 0
            assert "held by another process" in proc.log_text()
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()


HOLD_READ_ONLY = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("open", flush=True)
time.sleep(600)
"""


def test_a_reader_buffer_pool_is_half_the_memory_the_process_may_use(tmp_path: Path) -> None:
    import os

    store = tmp_path / "store.duckdb"
    StoreWriter(store).close()
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cgroup = Path("/sys/fs/cgroup/memory.max")
    text = cgroup.read_text().strip() if cgroup.exists() else "max"
    allowed = min(machine, int(text)) if text.isdigit() else machine
    reader = open_reader(store)
    [(limit,)] = reader.execute(
        "SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'"
    ).fetchall()
    reader.close()
    # DuckDB prints the limit in binary units with two decimals, e.g. "11.7 GiB".
    number, unit = str(limit).split()
    shown = float(number) * {"MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]
    assert abs(shown - allowed / 2) <= 0.01 * allowed / 2 + 2**20


def test_a_reader_spills_into_a_directory_of_its_own_removed_when_it_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    store = tmp_path / "store.duckdb"
    writer = StoreWriter(store)
    con = writer.connection()
    insert_spans(con, [span_record()])
    con.close()
    writer.close()
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    reader = open_reader(store)
    [(spill,)] = reader.execute("SELECT current_setting('temp_directory')").fetchall()
    assert Path(spill).parent == tmp_path / "tmp"
    # 64 MiB of rows through a 16 MiB buffer pool: the temporary table must spill.
    reader.execute("SET memory_limit = '16MiB'")
    reader.execute(
        "CREATE TEMP TABLE big AS SELECT range AS i, repeat('x', 24) || range AS s "
        "FROM range(2000000)"
    )
    assert reader.execute("SELECT count(*) FROM big").fetchone() == (2_000_000,)
    spilled = reader.execute("SELECT sum(size) FROM duckdb_temporary_files()").fetchone()
    assert spilled is not None and spilled[0] > 0
    assert Path(spill).is_dir()
    reader.close()
    assert not Path(spill).exists()
    # Nothing was written into or beside the store (DuckDB's default spill directory
    # would be store.duckdb.tmp).
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.duckdb", "tmp"]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_reader_runs_one_duckdb_thread_per_256_mib_of_buffer_pool(tmp_path: Path) -> None:
    import os

    from infermeter.collectors._reader import reader_memory_limit, reader_threads

    cpus = len(os.sched_getaffinity(0))
    mib = 2**20
    assert reader_threads(100 * mib) == 1  # never none
    assert reader_threads(256 * mib) == 1
    assert reader_threads(512 * mib) == min(2, cpus)
    assert reader_threads(1024 * mib) == min(4, cpus)
    assert reader_threads(1024 * 1024 * mib) == cpus  # never more than the CPUs
    store = tmp_path / "store.duckdb"
    StoreWriter(store).close()
    reader = open_reader(store)
    [(threads,)] = reader.execute("SELECT current_setting('threads')").fetchall()
    reader.close()
    pool = int(reader_memory_limit().removesuffix("MiB")) * mib
    assert int(threads) == max(1, min(cpus, pool // (256 * mib)))


def test_a_reader_can_be_given_a_smaller_buffer_pool(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    StoreWriter(store).close()
    reader = open_reader(store, memory_limit="300MiB")
    [(limit,)] = reader.execute(
        "SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'"
    ).fetchall()
    reader.close()
    assert limit == "300.0 MiB"
