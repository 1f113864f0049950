"""From accepted rows to the store: write-ahead log, bounded queue, batching flusher.

``submit`` is called by request threads. It reserves room in the queue (or raises
:class:`Overloaded`: the receiver answers 429 + Retry-After and the client retries),
writes one log record, queues the Arrow tables in log order, and returns once the
record is on disk — only then may the request be acknowledged.

One flusher thread owns the store. It opens it (retrying while another process holds
the file: ingest continues into the log meanwhile), replays what earlier runs logged
but did not store, then appends queued tables in large batches (``batch_spans`` rows or
every ``flush_interval`` seconds) with the log checkpoint in the same transaction.
Memory is bounded by ``max_queue_spans``; the log on disk by the same amount plus what
a replay still has to load.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infermeter.collectors._store import (
    SnapshotInfo,
    StoreLockedError,
    StoreWriter,
    decode_batch_events,
    encode_batch,
)
from infermeter.collectors._wal import WriteAheadLog

if TYPE_CHECKING:
    import pyarrow as pa
    from infermeter.collectors._clickhouse_writer import ClickHouseWriter

__all__ = ["IngestPipeline", "Overloaded", "PipelineConfig", "Unavailable"]

# One write-ahead-log record: (seq, spans, embeddings, events or None).
_Record = tuple[int, "pa.Table", "pa.Table", "pa.Table | None"]

_log = logging.getLogger("infermeter.collectors")


def _transient(exc: BaseException) -> bool:
    """Whether a store failure may pass by itself (so the data should be retried)."""
    import duckdb

    return isinstance(
        exc,
        OSError
        | duckdb.IOException
        | duckdb.OutOfMemoryException
        | duckdb.TransactionException
        | duckdb.InterruptException
        | duckdb.FatalException,
    ) or _invalidated(exc)


def _invalidated(exc: BaseException) -> bool:
    """Whether DuckDB gave up on the connection (after a failed write, e.g. a full
    disk, every later statement fails until the database is opened again)."""
    import duckdb

    return isinstance(exc, duckdb.FatalException) or "invalidated" in str(exc)


class Overloaded(Exception):  # noqa: N818 — a condition, reported as HTTP 429
    """The queue is full; the client should retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"ingest queue full; retry after {retry_after}s")
        self.retry_after = retry_after


class Unavailable(Exception):  # noqa: N818 — a condition, reported as HTTP 503
    """The collector cannot accept data right now (shutting down, disk error)."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    max_queue_spans: int = 100_000
    batch_spans: int = 10_000
    flush_interval: float = 1.0
    segment_bytes: int = 64 * 1024 * 1024
    store_retry_interval: float = 1.0
    queue_wait: float = 2.0  # how long a request may wait for room before 429
    store_threads: int | None = 1  # DuckDB threads of the writer
    store_memory_limit: str | None = None  # DuckDB buffer pool of the writer
    max_waiting: int = 4  # requests in line; more are refused before reading their body


@dataclass(slots=True)
class _Item:
    seq: int
    spans: pa.Table
    embeddings: pa.Table
    rows: int
    queued_at: float
    events: pa.Table | None = None


@dataclass(slots=True)
class _Counters:
    accepted_spans: int = 0
    stored_spans: int = 0
    stored_embeddings: int = 0
    stored_events: int = 0
    replayed_spans: int = 0
    overloaded_requests: int = 0
    dead_lettered_spans: int = 0
    store_errors: int = 0
    store_reopens: int = 0
    flushes: int = 0
    last_error: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class IngestPipeline:
    """The write path of one collector process (see the module docstring)."""

    def __init__(self, store_path: Path | str, wal_dir: Path, config: PipelineConfig) -> None:
        """``store_path``: the DuckDB file, or a ClickHouse store URL (a ``str``)."""
        self.store_path = store_path
        self.config = config
        self.wal = WriteAheadLog(wal_dir, segment_bytes=config.segment_bytes)
        self.dead_letter_dir = wal_dir.parent / "dead-letter"
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0  # includes rows reserved by requests still writing the log
        self._stored_seq = 0  # every record up to this one is in the store
        self._committed_seq = 0  # the last record the store committed (flusher only)
        self._flush_wanted = 0  # the flusher skips its wait while this is positive
        self._waiting: deque[object] = deque()  # requests in line for queue room
        self._closing = False
        self._stopped = False
        self._store: StoreWriter | ClickHouseWriter | None = None
        self._store_ready = threading.Event()
        self._fatal: BaseException | None = None
        # The store's last write failure, until a write succeeds again (or None).
        self._store_error: str | None = None
        self._snapshot_lock = threading.Lock()
        self._snapshot: SnapshotInfo | None = None
        self.counters = _Counters()
        self._thread = threading.Thread(target=self._run, name="infermeter-flusher", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------

    def open_store(self) -> bool:
        """Try to open the store now; False if another process holds it (the flusher
        keeps retrying). Any other failure (a corrupt file, a newer schema) raises."""
        if self._store is not None:
            return True
        if isinstance(self.store_path, str):  # a ClickHouse store URL
            from infermeter.collectors._clickhouse_writer import ClickHouseWriter
            from infermeter.collectors._store_url import parse_store

            store: StoreWriter | ClickHouseWriter = ClickHouseWriter(parse_store(self.store_path))
        else:
            try:
                store = StoreWriter(
                    self.store_path,
                    threads=self.config.store_threads,
                    memory_limit=self.config.store_memory_limit,
                )
            except StoreLockedError:
                return False
        self._store = store
        stored = store.checkpoint(self.wal.wal_id)
        if stored >= self.wal.first_seq_this_run and self.wal.advance_to(stored + 1):
            _log.error(
                "the store holds write-ahead-log records up to %d, past the newest the log "
                "still has (its newest segment lost records, already stored); numbering "
                "this run's records from %d",
                stored,
                stored + 1,
            )
        return True

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 60.0) -> bool:
        """Store everything queued, then release the store and the log. Returns False if
        the store could not take it all in time (it stays in the log for the next run)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._cond:
            # Out of time: the flusher stops retrying (what is left stays in the log).
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(5.0)
        drained = not self._queue and self._fatal is None and self._store_error is None
        gone = self._store.missing() if self._store is not None else None
        if gone is not None:
            _log.error("%s", gone)
            drained = False
        try:
            self.wal.close()
        except OSError as exc:
            _log.error("closing the write-ahead log failed: %s", exc)
            drained = False
        if self._store is not None and not self._thread.is_alive():
            try:
                if not self._store.close():
                    drained = False
            finally:
                self._store = None
        return drained

    # -- the request side --------------------------------------------------------------

    def submit(self, spans: pa.Table, embeddings: pa.Table, events: pa.Table | None = None) -> int:
        """Log and queue one request's rows; returns its sequence number once durable."""
        # Log records count like spans against the queue bound.
        rows = spans.num_rows + (events.num_rows if events is not None else 0)
        with self._cond:
            self._admit(rows)
        try:
            payload = encode_batch(spans, embeddings, events)
            now = time.monotonic()

            def enqueue(seq: int) -> None:
                with self._cond:
                    self._queue.append(_Item(seq, spans, embeddings, rows, now, events))
                    self.counters.accepted_spans += rows
                    # The first item starts the flusher's flush_interval clock (it sleeps
                    # without a timeout while the queue is empty); a full batch wakes it.
                    if len(self._queue) == 1 or self._queued_rows >= self.config.batch_spans:
                        self._cond.notify_all()

            seq = self.wal.append(payload, then=enqueue)
        except BaseException as exc:
            with self._cond:
                self._queued_rows -= rows
            if isinstance(exc, OSError):
                # Disk full, I/O error, the folder removed: not acknowledged, and the
                # client is told to come back (503 + Retry-After), not that it erred.
                raise Unavailable(exc.strerror or str(exc)) from None
            raise
        try:
            self.wal.sync(seq)
        except OSError as exc:
            # Queued already, so it may still be stored; never acknowledged.
            raise Unavailable(exc.strerror or str(exc)) from None
        return seq

    def _admit(self, rows: int) -> None:
        """Reserve room for ``rows`` (called holding ``_cond``), waiting in line up to
        ``queue_wait`` seconds for the flusher to make room; else :class:`Overloaded`.

        Waiting turns a burst into latency instead of refusals, and the line is first
        come, first served, so no client starves while others keep getting in — an
        OpenTelemetry exporter gives a batch up after six refusals.
        """

        def fits() -> bool:
            # An oversized batch still enters an empty queue, or it could never land.
            queued = self._queued_rows
            return not queued or queued + rows <= self.config.max_queue_spans

        def usable() -> None:
            if self._closing:
                raise Unavailable("collector is shutting down")
            # A failing log is not checked here: the next write tries it, and its
            # success is what shows that it works again.
            reason = self.health_reason(include_log=False)
            if reason is not None:
                raise Unavailable(reason)

        usable()
        if not self._waiting and fits():
            self._queued_rows += rows
            return
        ticket = object()
        self._waiting.append(ticket)
        self._cond.notify_all()  # the flusher stores now rather than at its interval
        deadline = time.monotonic() + self.config.queue_wait
        try:
            while not (self._waiting[0] is ticket and fits()):
                usable()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.counters.overloaded_requests += 1
                    raise Overloaded(self.retry_after())
                self._cond.wait(remaining)
            self._queued_rows += rows
        finally:
            self._waiting.remove(ticket)
            self._cond.notify_all()

    def precheck(self) -> None:
        """Refuse a request before its body is read when the line for room is already
        long (its wait would only burn a decode), or the collector cannot accept."""
        with self._cond:
            if self._closing:
                raise Unavailable("collector is shutting down")
            if len(self._waiting) >= self.config.max_waiting:
                self.counters.overloaded_requests += 1
                raise Overloaded(self.retry_after())

    def healthy(self) -> bool:
        """False while data cannot be made durable and stored (requests then get 503)."""
        return self.health_reason() is None

    def health_reason(self, *, include_log: bool = True) -> str | None:
        """Why the collector cannot accept data right now, or None."""
        if self._fatal is not None:
            return f"store writer stopped: {self._fatal}"
        if self._store_error is not None:
            return f"store: {self._store_error}"
        wal_error = self.wal.error if include_log else None
        if wal_error is not None:
            return f"write-ahead log: {wal_error}"
        store = self._store
        if store is not None:
            gone = store.missing()
            if gone is not None:
                return f"store: {gone}"
        return None

    def retry_after(self) -> int:
        # Whole seconds (RFC 9110 delay-seconds), jittered so refused clients do not all
        # come back at the same instant.
        return random.randint(1, 2)  # noqa: S311 — jitter, not security

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything acknowledged before this call is in the store."""
        with self._cond:
            target = self._queue[-1].seq if self._queue else self._stored_seq
            self._flush_wanted += 1
            self._cond.notify_all()
            try:
                return (
                    self._cond.wait_for(
                        lambda: self._stored_seq >= target or self._stopped, timeout
                    )
                    and self._stored_seq >= target
                )
            finally:
                self._flush_wanted -= 1

    def snapshot(self, directory: Path, timeout: float = 60.0) -> SnapshotInfo:
        """A consistent copy of the store holding everything acknowledged so far, as a
        new file in ``directory``; reused while nothing new has been stored since it was
        made. The two newest snapshots are kept (a reader may still be opening the
        previous one), older ones are deleted."""
        if not self._store_ready.wait(timeout):
            raise Unavailable("the store is not open yet (another process holds it)")
        if not self.flush(timeout):
            raise Unavailable("timed out storing queued spans before the snapshot")
        with self._snapshot_lock:
            current = self._snapshot
            if current is not None and current.seq == self._stored_seq and current.path.exists():
                return current
            store = self._store
            if store is None:
                raise Unavailable("the store is closed")
            directory.mkdir(parents=True, exist_ok=True)
            dest = directory / f"{self._stored_seq:020d}-{time.time_ns()}.duckdb"
            # The previous snapshot of this run is a valid base: only this process has
            # written the store since, and it only appends.
            info = store.snapshot(dest, self.wal.wal_id, base=current)
            self._snapshot = info
            for old in sorted(directory.glob("*.duckdb"))[:-2]:
                with contextlib.suppress(OSError):
                    old.unlink()
            return info

    def stats(self) -> dict[str, Any]:
        c = self.counters
        with self._cond:
            queued = self._queued_rows
        return {
            "store_open": self._store_ready.is_set(),
            "queued_spans": queued,
            "accepted_spans": c.accepted_spans,
            "stored_spans": c.stored_spans,
            "stored_embeddings": c.stored_embeddings,
            "stored_events": c.stored_events,
            "replayed_spans": c.replayed_spans,
            "overloaded_requests": c.overloaded_requests,
            "dead_lettered_spans": c.dead_lettered_spans,
            "store_errors": c.store_errors,
            "store_reopens": c.store_reopens,
            "wal_errors": self.wal.errors,
            "wal_corrupt_regions": self.wal.corrupt_regions,
            "wal_quarantined_bytes": self.wal.quarantined_bytes,
            "wal_quarantined_files": self.wal.quarantined_files,
            "flushes": c.flushes,
            "last_error": c.last_error,
            "stored_seq": self._stored_seq,
            "started_at": c.started_at.isoformat(),
        }

    # -- the flusher -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if not self._wait_for_store():
                return
            self._replay()
            self._store_ready.set()
            self._flush_loop()
        except BaseException as exc:  # noqa: BLE001 — a bug or a broken store: refuse new data, keep serving
            _log.exception("the store writer stopped; data already logged stays in the log")
            with self._cond:
                self._fatal = exc
                self._stopped = True
                self._cond.notify_all()

    def _wait_for_store(self) -> bool:
        warned = False
        while not self.open_store():
            if not warned:
                _log.warning(
                    "store %s is held by another process; accepting into the write-ahead "
                    "log and retrying every %.0fs",
                    self.store_path,
                    self.config.store_retry_interval,
                )
                warned = True
            with self._cond:
                if self._closing:
                    return False
                self._cond.wait(self.config.store_retry_interval)
        if warned:
            _log.warning("store %s opened; storing what was logged meanwhile", self.store_path)
        return True

    def _replay(self) -> None:
        store = self._store
        assert store is not None
        stored = store.checkpoint(self.wal.wal_id)
        first = self.wal.first_seq_this_run
        if stored >= first:
            # The log lost its newest records (a damaged or emptied newest segment) after
            # the store took them. Every readable earlier record is numbered below
            # ``first``, so nothing of theirs is pending; lower the checkpoint so this
            # run's records (numbered from ``first``) are never taken for stored ones.
            _log.error(
                "the store holds write-ahead-log records up to %d but the log restarts at "
                "%d: its newest segment lost records (already stored); moving the "
                "checkpoint back so this run's records are replayed after a crash",
                stored,
                first,
            )
            store.set_checkpoint(self.wal.wal_id, first - 1)
            stored = first - 1
        self._committed_seq = stored
        last = stored
        while True:
            try:
                last = self._replay_from(self._committed_seq)
                break
            except Exception as exc:
                self._store_failed(exc, "replaying the write-ahead log")
                with self._cond:
                    if self._closing:
                        raise
                    self._cond.wait(self.config.store_retry_interval)
                self._ensure_store_quietly()
        self._store_recovered()
        if last > stored:
            _log.info("replayed the write-ahead log up to record %d", last)
        with self._cond:
            self._stored_seq = max(self._stored_seq, last, self.wal.first_seq_this_run - 1)
        self.wal.release(self._stored_seq)

    def _replay_from(self, after: int) -> int:
        """Store every logged record after ``after`` from earlier runs; returns the last."""
        pending: list[_Record] = []
        rows = 0
        last = after
        for seq, payload in self.wal.replay(after=after):
            spans, embeddings, events = decode_batch_events(payload)
            rows += spans.num_rows
            last = seq
            pending.append((seq, spans, embeddings, events))
            if rows >= self.config.batch_spans:
                self._store_batch(pending, replay=True)
                pending, rows = [], 0
        if pending:
            self._store_batch(pending, replay=True)
        return last

    def _next_batch(self) -> tuple[list[_Item], int] | None:
        """Wait (holding ``_cond``) until a batch is due; None when the flusher is done."""
        config = self.config
        while True:
            if self._stopped:
                return None
            if self._queue:
                age = time.monotonic() - self._queue[0].queued_at
                if (
                    self._closing
                    or self._flush_wanted
                    or self._waiting
                    or self._queued_rows >= config.batch_spans
                    or age >= config.flush_interval
                ):
                    break
                self._cond.wait(config.flush_interval - age)
            elif self._closing:
                return None
            else:
                self._cond.wait()
        batch: list[_Item] = []
        rows = 0
        for item in self._queue:
            if batch and rows + item.rows > config.batch_spans:
                break
            batch.append(item)
            rows += item.rows
        return batch, rows

    def _flush_loop(self) -> None:
        config = self.config
        while True:
            with self._cond:
                due = self._next_batch()
            if due is None:
                return
            batch, rows = due
            failed = False
            try:
                self._ensure_store()
                self._store_batch([(i.seq, i.spans, i.embeddings, i.events) for i in batch])
            except Exception as exc:  # noqa: BLE001 — transient: keep the data queued, retry
                failed = True
                self._store_failed(exc, f"storing {rows} spans")
            else:
                self._store_recovered()
            with self._cond:
                # Drop exactly what was committed (all of it, or a prefix when a retry
                # of single records stopped half-way): never stored twice, never lost.
                while self._queue and self._queue[0].seq <= self._committed_seq:
                    done = self._queue.popleft()
                    self._queued_rows -= done.rows
                    self._stored_seq = done.seq
                self._cond.notify_all()
                if failed:
                    self._cond.wait(config.store_retry_interval)
            with contextlib.suppress(OSError):
                self.wal.release(self._stored_seq)

    def _store_failed(self, exc: BaseException, doing: str) -> None:
        """Count and report a failed store write; the data stays queued (or logged) and
        is retried. Until a write succeeds, requests get 503 and ``/healthz`` says why.
        A connection DuckDB invalidated is dropped, to be opened again."""
        message = " ".join(str(exc).split()) or type(exc).__name__
        self.counters.store_errors += 1
        self.counters.last_error = message
        store = self._store
        gone = store.missing() if store is not None else None
        if gone is not None:
            message = gone
        if self._store_error is None:
            _log.error(
                "%s failed (kept in the write-ahead log; retrying; requests get 503 meanwhile): %s",
                doing,
                message,
            )
        self._store_error = message
        if store is not None and gone is None and _invalidated(exc):
            _log.warning("the store connection is unusable; opening the store again")
            store.abandon()
            self._store = None

    def _ensure_store(self) -> None:
        """Open the store again after its connection was dropped; raise if it cannot be.
        What the store holds decides what is still to be stored: the checkpoint is
        read again, so a commit that did land before the failure is not repeated."""
        if self._store is not None:
            return
        if isinstance(self.store_path, Path) and not self.store_path.exists():
            raise OSError(
                f"the store file {self.store_path} was removed while the collector ran; "
                "restart the collector"
            )
        if not self.open_store():
            raise OSError(f"store {self.store_path} is held by another process")
        store = self._opened()
        assert store is not None
        self.counters.store_reopens += 1
        self._committed_seq = store.checkpoint(self.wal.wal_id)
        _log.warning("store %s opened again", self.store_path)

    def _opened(self) -> StoreWriter | ClickHouseWriter | None:
        # Read after open_store(): a narrowed ``self._store`` would be stale to mypy.
        return self._store

    def _ensure_store_quietly(self) -> None:
        try:
            self._ensure_store()
        except Exception as exc:  # noqa: BLE001 — reported through the health state
            self._store_error = " ".join(str(exc).split())

    def _store_recovered(self) -> None:
        if self._store_error is not None:
            _log.warning("the store works again (was: %s)", self._store_error)
            self._store_error = None

    def _store_batch(self, items: list[_Record], *, replay: bool = False) -> None:
        """Store log records in one transaction. If the store refuses the *data* (not
        the disk), store them one by one and set aside, in ``dead-letter/``, only the
        record it refuses alone — one bad record must never stall ingest. Transient
        failures (I/O, memory, conflicts) raise, and the caller retries."""
        try:
            self._write(
                [item[1] for item in items],
                [item[2] for item in items],
                items[-1][0],
                events=[item[3] for item in items if item[3] is not None],
                replay=replay,
            )
        except Exception as exc:
            if _transient(exc):
                raise
            if len(items) > 1:
                for item in items:
                    self._store_batch([item], replay=replay)
                return
            self._dead_letter(*items[0], exc)

    def _dead_letter(
        self,
        seq: int,
        spans: pa.Table,
        embeddings: pa.Table,
        events: pa.Table | None,
        exc: Exception,
    ) -> None:
        self.dead_letter_dir.mkdir(parents=True, exist_ok=True)
        path = self.dead_letter_dir / f"{seq:020d}.arrows"
        payload = encode_batch(spans, embeddings, events)
        path.write_bytes(b"".join(bytes(part) for part in payload))
        store = self._store
        assert store is not None
        # Nothing of the record is stored, but the checkpoint moves past it.
        try:
            store.write(
                spans.schema.empty_table(),
                embeddings.schema.empty_table(),
                wal_id=self.wal.wal_id,
                seq=seq,
            )
        except Exception as refused:
            # A store that refuses even an empty write is broken, not the record: the
            # record stays in the log and the collector stops acknowledging.
            raise OSError(f"the store refuses every write: {refused}") from refused
        self._committed_seq = seq
        self.counters.dead_lettered_spans += spans.num_rows
        self.counters.last_error = str(exc)
        _log.error(
            "the store refused record %d (%d spans): %s — set aside in %s",
            seq,
            spans.num_rows,
            exc,
            path,
        )

    def _write(
        self,
        spans: list[pa.Table],
        embeddings: list[pa.Table],
        seq: int,
        *,
        events: list[pa.Table] | None = None,
        replay: bool = False,
    ) -> None:
        import pyarrow as pa

        store = self._store
        assert store is not None
        gone = store.missing()
        if gone is not None:
            raise OSError(gone)  # never commit into a file nobody can read any more
        span_table = pa.concat_tables(spans, promote_options="default")
        embedding_table = pa.concat_tables(embeddings, promote_options="default")
        event_table = pa.concat_tables(events, promote_options="default") if events else None
        store.write(span_table, embedding_table, event_table, wal_id=self.wal.wal_id, seq=seq)
        self._committed_seq = seq
        c = self.counters
        c.flushes += 1
        c.stored_spans += span_table.num_rows
        c.stored_embeddings += embedding_table.num_rows
        if event_table is not None:
            c.stored_events += event_table.num_rows
        if replay:
            c.replayed_spans += span_table.num_rows
